/** Balances per currency, paying out what is available, the statement of
 * every movement, and its CSV. */

import { useState, type FormEvent } from "react";
import { api, unwrap, type Schemas } from "../api/client";
import { useDownload } from "../components/files";
import { Empty, Field, Loading, MoneyText, ProblemNote, ScrollTable, useCommand, useLoad } from "../components/ui";
import { formatMoney, parseMoney, toDecimal } from "../lib/money";
import type { FieldErrors } from "../lib/problem";

export function MoneyPage() {
  const balance = useLoad(() => unwrap(api.GET("/api/v1/me/balance")), []);
  const statement = useLoad(async () => {
    const answer = await unwrap(api.GET("/api/v1/me/statement", { params: { query: { format: "json" } } }));
    if (typeof answer === "string") throw new TypeError("asked for JSON, got the CSV");
    return answer;
  }, []);
  const { download, error: downloadError } = useDownload();
  const downloadCsv = () =>
    download(() => api.GET("/api/v1/me/statement", { params: { query: { format: "csv" } }, parseAs: "blob" }), "statement.csv");

  return (
    <section>
      <h1>Money</h1>
      <div className="card">
        <h2>Balance</h2>
        {balance.loading && !balance.data ? <Loading what="your balance" /> : null}
        <ProblemNote error={balance.error} onRetry={balance.reload} />
        {balance.data && balance.data.balances.length === 0 ? <Empty>No money has moved yet.</Empty> : null}
        {balance.data?.balances.length ? (
          <ScrollTable label="Balances">
            <thead>
              <tr>
                <th scope="col">Currency</th>
                <th scope="col">Available</th>
                <th scope="col">In escrow</th>
                <th scope="col">Paid out</th>
              </tr>
            </thead>
            <tbody>
              {balance.data.balances.map((b) => (
                <tr key={b.currency}>
                  <td>{b.currency}</td>
                  <td><MoneyText money={{ amount: b.available, currency: b.currency }} /></td>
                  <td><MoneyText money={{ amount: b.in_escrow, currency: b.currency }} /></td>
                  <td><MoneyText money={{ amount: b.paid_out, currency: b.currency }} /></td>
                </tr>
              ))}
            </tbody>
          </ScrollTable>
        ) : null}
      </div>
      {balance.data?.balances.length ? (
        <PayoutForm
          balances={balance.data.balances}
          onPaid={() => {
            balance.reload();
            statement.reload();
          }}
        />
      ) : null}
      <div className="card">
        <h2>Statement</h2>
        <p className="actions">
          <button type="button" onClick={() => void downloadCsv()}>
            Download CSV
          </button>
        </p>
        <ProblemNote error={downloadError} onRetry={() => void downloadCsv()} />
        {statement.loading && !statement.data ? <Loading what="your statement" /> : null}
        <ProblemNote error={statement.error} onRetry={statement.reload} />
        {statement.data && statement.data.items.length === 0 ? <Empty>No movements yet.</Empty> : null}
        {statement.data?.items.length ? (
          <ScrollTable label="Statement">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col">Amount</th>
                <th scope="col">Running total</th>
              </tr>
            </thead>
            <tbody>
              {statement.data.items.map((line, i) => (
                <tr key={`${line.at}-${i}`}>
                  <td>{new Date(line.at).toLocaleString()}</td>
                  <td>{line.description}</td>
                  <td><MoneyText money={{ amount: line.amount, currency: line.currency }} /></td>
                  <td><MoneyText money={{ amount: line.running_total, currency: line.currency }} /></td>
                </tr>
              ))}
            </tbody>
          </ScrollTable>
        ) : null}
      </div>
    </section>
  );
}

/** Stays on screen while the balance it paid out is read again, so its answer does too. */
function PayoutForm({ balances, onPaid }: { balances: Schemas["CurrencyBalance"][]; onPaid: () => void }) {
  const payable = balances.filter((b) => b.available > 0);
  const [chosen, setChosen] = useState<string | null>(null);
  const current = payable.find((b) => b.currency === chosen) ?? payable[0];
  const { run, pending, error, fieldErrors } = useCommand();
  const [local, setLocal] = useState<FieldErrors>({});
  const [paid, setPaid] = useState<Schemas["PayoutResponse"] | null>(null);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!current) return;
    const { currency, available } = current;
    const amount = parseMoney(String(new FormData(event.currentTarget).get("amount") ?? ""), currency);
    if (!amount.ok || amount.amount > available || amount.amount === 0) {
      setLocal({ amount: [amount.ok ? "More than zero and at most what is available." : amount.error] });
      return;
    }
    setLocal({});
    const answer = await run((headers) =>
      api.POST("/api/v1/me/payouts", { params: { header: headers }, body: { amount: amount.amount, currency } }),
    );
    if (answer) {
      setPaid(answer);
      onPaid();
    }
  }
  return (
    <div className="card">
      <h2>Pay out</h2>
      {current ? (
        <form onSubmit={submit} noValidate aria-label="Pay out" className="row">
          {payable.length > 1 ? (
            <Field label="Currency" name="currency" errors={fieldErrors}>
              {(p) => (
                <select {...p} value={current.currency} onChange={(e) => setChosen(e.target.value)}>
                  {payable.map((b) => (
                    <option key={b.currency}>{b.currency}</option>
                  ))}
                </select>
              )}
            </Field>
          ) : null}
          <Field
            label={`Amount to pay out (${current.currency})`}
            name="amount"
            errors={{ ...fieldErrors, ...local }}
            hint={`Available: ${formatMoney({ amount: current.available, currency: current.currency })}`}
          >
            {(p) => (
              <input
                {...p}
                key={`${current.currency}-${current.available}`}
                inputMode="decimal"
                required
                defaultValue={toDecimal(current.available, current.currency)}
              />
            )}
          </Field>
          <button type="submit" className="primary" disabled={pending}>
            Pay out to your account
          </button>
        </form>
      ) : (
        <Empty>Nothing to pay out: released milestones add to what is available.</Empty>
      )}
      <ProblemNote error={error} />
      {paid ? (
        <p role="status">
          Payout of <MoneyText money={paid} />: {paid.status} (reference {paid.reference}).
        </p>
      ) : null}
    </div>
  );
}
