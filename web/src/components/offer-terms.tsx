/** An offer's terms as one form, for the first version (from a proposal) and
 * every revision (on the contract): the scope and its milestones, each with
 * its title, amount and due date. */

import { useState } from "react";
import type { Schemas } from "../api/client";
import { parseMoney, toDecimal } from "../lib/money";
import type { FieldErrors } from "../lib/problem";
import { Field } from "./ui";

export type OfferTerms = Schemas["OfferTermsRequest"];

export interface MilestoneDefaults {
  title: string;
  due_date: string;
  amount?: number;
}

export interface TermsDefaults {
  scope: string;
  milestones: MilestoneDefaults[];
}

/** The API allows this many milestones in one offer. */
export const MAX_MILESTONES = 20;

export function OfferTermsFields({ currency, defaults, errors }: { currency: string; defaults: TermsDefaults; errors: FieldErrors }) {
  const [milestones, setMilestones] = useState<MilestoneDefaults[]>(
    defaults.milestones.length ? defaults.milestones : [{ title: "Delivery", due_date: "" }],
  );
  const last = milestones[milestones.length - 1];
  return (
    <>
      <Field label="Scope of the contract" name="terms.scope" errors={errors}>
        {(p) => <textarea {...p} name="scope" rows={3} required defaultValue={defaults.scope} />}
      </Field>
      {milestones.map((m, i) => (
        <fieldset key={i} className="milestone-terms">
          <legend>Milestone {i + 1}</legend>
          <Field label="Title" name={`terms.milestones.${i}.title`} errors={errors}>
            {(p) => <input {...p} name={`milestones.${i}.title`} required defaultValue={m.title} />}
          </Field>
          <div className="row">
            <Field label={`Amount (${currency})`} name={`terms.milestones.${i}.amount`} errors={errors}>
              {(p) => (
                <input
                  {...p}
                  name={`milestones.${i}.amount`}
                  inputMode="decimal"
                  required
                  defaultValue={m.amount != null ? toDecimal(m.amount, currency) : ""}
                />
              )}
            </Field>
            <Field label="Due" name={`terms.milestones.${i}.due_date`} errors={errors}>
              {(p) => <input {...p} name={`milestones.${i}.due_date`} type="date" required defaultValue={m.due_date} />}
            </Field>
          </div>
          {i > 0 && i === milestones.length - 1 ? (
            <button type="button" className="link" onClick={() => setMilestones((all) => all.slice(0, -1))}>
              Remove milestone {i + 1}
            </button>
          ) : null}
        </fieldset>
      ))}
      {milestones.length < MAX_MILESTONES ? (
        <button
          type="button"
          onClick={() => setMilestones((all) => [...all, { title: "", due_date: last?.due_date ?? "" }])}
        >
          Add a milestone
        </button>
      ) : null}
    </>
  );
}

/** The terms the form holds, or the errors to show before anything is sent. */
export function readOfferTerms(form: FormData, currency: string): { terms: OfferTerms } | { errors: FieldErrors } {
  const errors: FieldErrors = {};
  const milestones: OfferTerms["milestones"] = [];
  for (let i = 0; form.has(`milestones.${i}.title`); i++) {
    const amount = parseMoney(String(form.get(`milestones.${i}.amount`) ?? ""), currency);
    if (!amount.ok) errors[`terms.milestones.${i}.amount`] = [amount.error];
    milestones.push({
      title: String(form.get(`milestones.${i}.title`)),
      amount: amount.ok ? amount.amount : 0,
      due_date: String(form.get(`milestones.${i}.due_date`)),
    });
  }
  if (Object.keys(errors).length) return { errors };
  return { terms: { currency, scope: String(form.get("scope")), milestones } };
}
