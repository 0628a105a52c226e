/** Browsing and filtering projects, and posting one. */

import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { Budget } from "../components/budget";
import { chosenFiles, useUploads } from "../components/files";
import { MoreButton, usePaged } from "../components/paged";
import { Empty, Field, Loading, ProblemNote, SkillTags, useCommand } from "../components/ui";
import { parseMoney, toDecimal } from "../lib/money";
import type { FieldErrors } from "../lib/problem";

const FILTERS = ["q", "skills", "budget_type", "budget_min", "budget_max", "currency", "deadline_before", "sort"] as const;

export function ProjectsPage() {
  const [params, setParams] = useSearchParams();
  const query = Object.fromEntries(FILTERS.flatMap((k) => (params.get(k) ? [[k, params.get(k)]] : [])));
  const list = usePaged(
    (cursor) => unwrap(api.GET("/api/v1/projects", { params: { query: { ...query, limit: 20, cursor } } })),
    [params.toString()],
  );
  const page = list.first;

  function filter(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const next = new URLSearchParams();
    const currency = String(form.get("currency") || "USD");
    for (const key of FILTERS) {
      const value = String(form.get(key) ?? "").trim();
      if (!value) continue;
      if (key === "budget_min" || key === "budget_max") {
        const parsed = parseMoney(value, currency);
        if (parsed.ok) next.set(key, String(parsed.amount));
      } else next.set(key, value);
    }
    setParams(next);
  }

  const items = list.items;
  const currency = params.get("currency") ?? "USD";
  const amount = (key: string) => {
    const value = params.get(key);
    return value && /^\d+$/.test(value) ? toDecimal(Number(value), currency) : "";
  };
  return (
    <section>
      <h1>Projects</h1>
      <form className="filters" onSubmit={filter} role="search" aria-label="Filter projects">
        <Field label="Keywords" name="q">
          {(p) => <input {...p} type="search" defaultValue={params.get("q") ?? ""} />}
        </Field>
        <Field label="Skills" name="skills" hint="Comma-separated">
          {(p) => <input {...p} defaultValue={params.get("skills") ?? ""} />}
        </Field>
        <Field label="Budget type" name="budget_type">
          {(p) => (
            <select {...p} defaultValue={params.get("budget_type") ?? ""}>
              <option value="">Any</option>
              <option value="fixed">Fixed price</option>
              <option value="hourly">Hourly</option>
            </select>
          )}
        </Field>
        <Field label="Budget from" name="budget_min">
          {(p) => <input {...p} inputMode="decimal" defaultValue={amount("budget_min")} />}
        </Field>
        <Field label="Budget up to" name="budget_max">
          {(p) => <input {...p} inputMode="decimal" defaultValue={amount("budget_max")} />}
        </Field>
        <Field label="Due before" name="deadline_before">
          {(p) => <input {...p} type="date" defaultValue={params.get("deadline_before") ?? ""} />}
        </Field>
        <Field label="Sort by" name="sort">
          {(p) => (
            <select {...p} defaultValue={params.get("sort") ?? ""}>
              <option value="">Best match</option>
              <option value="newest">Newest</option>
              <option value="budget">Budget</option>
              <option value="deadline">Deadline</option>
            </select>
          )}
        </Field>
        <button type="submit">Search</button>
      </form>
      {page.loading && !page.data ? <Loading what="projects" /> : null}
      <ProblemNote error={page.error} onRetry={page.reload} />
      {page.data ? (
        <p className="meta" role="status">
          {page.data.total} project{page.data.total === 1 ? "" : "s"}
        </p>
      ) : null}
      {page.data && items.length === 0 ? <Empty>No project matches these filters yet.</Empty> : null}
      <ul className="cards">
        {items.map((project) => (
          <li key={project.project_id} className="card">
            <h2>
              <Link to={`/projects/${project.project_id}`}>{project.title}</Link>
            </h2>
            <p className="meta">
              <Budget budget={project.budget} /> · due {project.deadline} · {project.status}
            </p>
            <p className="clamp">{project.description}</p>
            <SkillTags skills={project.skills} />
          </li>
        ))}
      </ul>
      <MoreButton list={list} label="More projects" />
    </section>
  );
}

function splitList(text: FormDataEntryValue | null): string[] {
  return String(text ?? "")
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function PostProjectPage() {
  const navigate = useNavigate();
  const { run, pending, error, fieldErrors } = useCommand();
  const [local, setLocal] = useState<FieldErrors>({});
  const { upload, uploading, uploadError } = useUploads();

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const currency = String(form.get("currency"));
    const type = String(form.get("budget_type")) as "fixed" | "hourly";
    const errors: FieldErrors = {};
    const amountOf = (name: string) => {
      const parsed = parseMoney(String(form.get(name) ?? ""), currency);
      if (!parsed.ok) errors[`budget.${name}`] = [parsed.error];
      return parsed.ok ? parsed.amount : 0;
    };
    const budget =
      type === "fixed"
        ? { type, currency, amount: amountOf("amount") }
        : { type, currency, min_rate: amountOf("min_rate"), max_rate: amountOf("max_rate") };
    setLocal(errors);
    if (Object.keys(errors).length) return;
    const attachment_ids = await upload(chosenFiles(form), "attachment");
    if (!attachment_ids) return;
    const project = await run((headers) =>
      api.POST("/api/v1/projects", {
        headers,
        body: {
          title: String(form.get("title")),
          description: String(form.get("description")),
          scope: String(form.get("scope") ?? ""),
          objectives: splitList(form.get("objectives")),
          skills: splitList(form.get("skills")),
          deadline: String(form.get("deadline")),
          budget,
          attachment_ids,
        },
      }),
    );
    if (project) navigate(`/projects/${project.project_id}`);
  }

  const errors = { ...fieldErrors, ...local };
  return (
    <section className="card">
      <h1>Post a project</h1>
      <form onSubmit={submit} noValidate>
        <Field label="Title" name="title" errors={errors}>
          {(p) => <input {...p} required />}
        </Field>
        <Field label="Description" name="description" errors={errors}>
          {(p) => <textarea {...p} rows={5} required />}
        </Field>
        <Field label="Scope" name="scope" errors={errors}>
          {(p) => <textarea {...p} rows={3} />}
        </Field>
        <Field label="Objectives" name="objectives" errors={errors} hint="One per line">
          {(p) => <textarea {...p} rows={3} />}
        </Field>
        <Field label="Skills" name="skills" errors={errors} hint="Comma-separated, e.g. python, postgresql">
          {(p) => <input {...p} />}
        </Field>
        <div className="row">
          <Field label="Budget type" name="budget_type" errors={errors}>
            {(p) => (
              <select {...p} defaultValue="fixed">
                <option value="fixed">Fixed price</option>
                <option value="hourly">Hourly</option>
              </select>
            )}
          </Field>
          <Field label="Currency" name="currency" errors={errors}>
            {(p) => (
              <select {...p} defaultValue="USD">
                {["USD", "EUR", "GBP", "JPY"].map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div className="row">
          <Field label="Fixed price" name="budget.amount" errors={errors} hint="For a fixed price">
            {(p) => <input {...p} name="amount" inputMode="decimal" />}
          </Field>
          <Field label="Hourly rate from" name="budget.min_rate" errors={errors}>
            {(p) => <input {...p} name="min_rate" inputMode="decimal" />}
          </Field>
          <Field label="Hourly rate up to" name="budget.max_rate" errors={errors}>
            {(p) => <input {...p} name="max_rate" inputMode="decimal" />}
          </Field>
        </div>
        <Field label="Deadline" name="deadline" errors={errors}>
          {(p) => <input {...p} type="date" required />}
        </Field>
        <Field label="Files" name="attachment_ids" errors={errors}>
          {(p) => <input {...p} name="files" type="file" multiple />}
        </Field>
        <ProblemNote error={uploadError ?? error} />
        <button type="submit" disabled={pending || uploading}>
          {uploading ? "Uploading files…" : pending ? "Posting…" : "Post project"}
        </button>
      </form>
    </section>
  );
}

export function MyProjectsPage() {
  const list = usePaged(
    (cursor) => unwrap(api.GET("/api/v1/me/projects", { params: { query: { limit: 20, cursor } } })),
    [],
  );
  const page = list.first;
  return (
    <section>
      <h1>My projects</h1>
      {page.loading && !page.data ? <Loading what="your projects" /> : null}
      <ProblemNote error={page.error} onRetry={page.reload} />
      {page.data && list.items.length === 0 ? (
        <Empty>
          No projects yet. <Link to="/projects/new">Post your first</Link>.
        </Empty>
      ) : null}
      <ul className="cards">
        {list.items.map((project) => (
          <li key={project.project_id} className="card">
            <h2>
              <Link to={`/projects/${project.project_id}`}>{project.title}</Link>
            </h2>
            <p className="meta">
              <Budget budget={project.budget} /> · due {project.deadline} · <span className="status">{project.status}</span>
            </p>
          </li>
        ))}
      </ul>
      <MoreButton list={list} label="More projects" />
    </section>
  );
}
