/** What escrow holds for a contract, milestone by milestone. */

import type { Schemas } from "../api/client";
import { MoneyText, ScrollTable } from "./ui";

type Hold = Schemas["HoldResponse"];

/** `titles` names each milestone by its id (an id's start where it is unknown). */
export function EscrowHolds({ holds, titles }: { holds: Hold[]; titles: ReadonlyMap<string, string> }) {
  return (
    <ScrollTable label="Escrow holds">
      <thead>
        <tr>
          <th scope="col">Milestone</th>
          <th scope="col">Funded</th>
          <th scope="col">Held</th>
          <th scope="col">Released</th>
          <th scope="col">Refunded</th>
        </tr>
      </thead>
      <tbody>
        {holds.map((h) => (
          <tr key={h.milestone_id}>
            <td>{titles.get(h.milestone_id) ?? h.milestone_id.slice(0, 8)}</td>
            <td>
              <MoneyText money={{ amount: h.funded, currency: h.currency }} />
            </td>
            <td>
              <MoneyText money={{ amount: h.held, currency: h.currency }} />
            </td>
            <td>
              <MoneyText money={{ amount: h.released, currency: h.currency }} />
            </td>
            <td>
              <MoneyText money={{ amount: h.refunded, currency: h.currency }} />
            </td>
          </tr>
        ))}
      </tbody>
    </ScrollTable>
  );
}

/** Milestone titles by id, for the holds table. */
export function milestoneTitles(milestones: { milestone_id: string; title: string }[]): ReadonlyMap<string, string> {
  return new Map(milestones.map((m) => [m.milestone_id, m.title]));
}
