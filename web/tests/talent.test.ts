import { describe, expect, it } from "vitest";
import { form } from "./form";
import { talentQuery } from "../src/pages/talent";

describe("talent search's filters", () => {
  it("become the query, rates in minor units with their currency, defaults left out", () => {
    const read = talentQuery(form({ q: " django ", skills: "python", skills_mode: "any", rate_min: "40", rate_max: "", sort: "rate" }));
    expect("query" in read && read.query.toString()).toBe("q=django&skills=python&rate_min=4000&currency=USD&sort=rate");
  });

  it("say which rate is not an amount instead of dropping it", () => {
    expect(talentQuery(form({ rate_max: "12.345" }))).toEqual({ errors: { rate_max: ["At most 2 decimals in USD."] } });
  });
});
