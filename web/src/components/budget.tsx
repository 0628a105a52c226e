import type { Schemas } from "../api/client";
import { MoneyText } from "./ui";

export function Budget({ budget }: { budget: Schemas["BudgetResponse"] }) {
  const { currency } = budget;
  if (budget.type === "hourly") {
    return (
      <span>
        {budget.min_rate != null ? <MoneyText money={{ amount: budget.min_rate, currency }} /> : "?"}
        {"–"}
        {budget.max_rate != null ? <MoneyText money={{ amount: budget.max_rate, currency }} /> : "?"}
        {" an hour"}
      </span>
    );
  }
  return budget.amount != null ? <MoneyText money={{ amount: budget.amount, currency }} /> : null;
}
