import { describe, expect, it } from "vitest";
import { form } from "./form";
import { readOfferTerms } from "../src/components/offer-terms";

describe("an offer's terms from its form", () => {
  it("are the scope and each milestone in order, amounts in minor units", () => {
    const read = readOfferTerms(
      form({
        scope: "Rebuild",
        "milestones.0.title": "Delivery",
        "milestones.0.amount": "1,300.50",
        "milestones.0.due_date": "2027-01-31",
        "milestones.1.title": "Handover",
        "milestones.1.amount": "200",
        "milestones.1.due_date": "2027-02-14",
      }),
      "USD",
    );
    expect(read).toEqual({
      terms: {
        currency: "USD",
        scope: "Rebuild",
        milestones: [
          { title: "Delivery", amount: 130050, due_date: "2027-01-31" },
          { title: "Handover", amount: 20000, due_date: "2027-02-14" },
        ],
      },
    });
  });

  it("say what is wrong with each amount by its field, before anything is sent", () => {
    const read = readOfferTerms(
      form({
        scope: "x",
        "milestones.0.title": "y",
        "milestones.0.amount": "12",
        "milestones.0.due_date": "2027-01-31",
        "milestones.1.title": "z",
        "milestones.1.amount": "12.5",
        "milestones.1.due_date": "2027-01-31",
      }),
      "JPY",
    );
    expect(read).toEqual({ errors: { "terms.milestones.1.amount": ["JPY has no cents."] } });
  });
});
