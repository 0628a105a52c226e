/** A person's public profile with their photo, portfolio, reputation and
 * revealed reviews, and the seller's own profile and portfolio forms. */

import { useState, type FormEvent } from "react";
import { useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { chosenFiles, FileList, publicFileUrl, useUploads } from "../components/files";
import { ReputationLine } from "../components/reputation";
import { useSession } from "../components/session";
import { Empty, Field, Loading, MoneyText, ProblemNote, SkillTags, useCommand, useLoad } from "../components/ui";
import { isMoney, parseMoney, toDecimal } from "../lib/money";
import { safeLink } from "../lib/links";
import type { FieldErrors } from "../lib/problem";

type Seller = Schemas["SellerProfileResponse"];

function isSeller(value: unknown): value is Seller {
  return !!value && typeof value === "object";
}

type Buyer = Schemas["BuyerProfileResponse"];

function isBuyer(value: unknown): value is Buyer {
  return !!value && typeof value === "object";
}

export function ProfilePage() {
  const { userId = "" } = useParams();
  const tokens = useSession();
  const path = { user_id: userId };
  const profile = useLoad(() => unwrap(api.GET("/api/v1/users/{user_id}/profile", { params: { path } })), [userId]);
  const reviews = useLoad(() => unwrap(api.GET("/api/v1/users/{user_id}/reviews", { params: { path } })), [userId]);
  if (profile.loading && !profile.data) return <Loading what="the profile" />;
  if (!profile.data) return <ProblemNote error={profile.error} onRetry={profile.reload} />;
  const seller = isSeller(profile.data.seller) ? profile.data.seller : null;
  const buyer = isBuyer(profile.data.buyer) ? profile.data.buyer : null;
  const own = tokens?.user_id === userId;
  const roles = profile.data.roles;
  return (
    <article>
      {own ? <Completeness completeness={profile.data.completeness} /> : null}
      <header className="card">
        {seller?.photo_file_id ? (
          <img className="photo" src={publicFileUrl(seller.photo_file_id)} alt="Profile photo" width={96} height={96} />
        ) : null}
        <h1>{seller?.headline || "Profile"}</h1>
        <ReputationLine reputation={profile.data.reputation?.as_seller} />
        {isMoney(seller?.hourly_rate) ? (
          <p className="meta">
            <MoneyText money={seller.hourly_rate} /> an hour
          </p>
        ) : null}
        {seller?.bio ? <p className="prose">{seller.bio}</p> : null}
        <SkillTags skills={seller?.skills} />
        {seller?.portfolio?.length ? (
          <>
            <h2>Portfolio</h2>
            <ul className="portfolio">
              {seller.portfolio.map((item) => (
                <li key={item.item_id}>
                  <h3>{item.title}</h3>
                  {item.description ? <p className="prose">{item.description}</p> : null}
                  <FileList ids={item.file_ids ?? []} label={`Files of ${item.title}`} />
                  {(item.links ?? []).map((link) => {
                    const href = safeLink(link);
                    return href ? (
                      <a key={link} href={href} rel="noopener noreferrer nofollow" target="_blank">
                        {link}
                      </a>
                    ) : null;
                  })}
                </li>
              ))}
            </ul>
          </>
        ) : null}
      </header>
      {roles.includes("buyer") && (buyer?.company_name || !roles.includes("seller")) ? (
        <BuyerCard buyer={buyer} reputation={profile.data.reputation?.as_buyer} />
      ) : null}
      {own && roles.includes("buyer") ? <BuyerProfileForm userId={userId} buyer={buyer} onSaved={profile.reload} /> : null}
      {own && roles.includes("seller") ? (
        <>
          <SellerProfileForm userId={userId} seller={seller} onSaved={profile.reload} />
          <PortfolioForm userId={userId} onSaved={profile.reload} />
        </>
      ) : null}
      <section className="card" aria-labelledby="reviews-heading">
        <h2 id="reviews-heading">Reviews</h2>
        {reviews.data && "items" in reviews.data && reviews.data.items.length === 0 ? <Empty>No reviews yet.</Empty> : null}
        {reviews.data && "items" in reviews.data
          ? reviews.data.items.map((r) => (
              <blockquote key={`${r.contract_id}-${r.reviewer_id}`}>
                ★ {r.rating} — {r.text}
              </blockquote>
            ))
          : null}
      </section>
    </article>
  );
}

function SellerProfileForm({ userId, seller, onSaved }: { userId: string; seller: Seller | null; onSaved: () => void }) {
  const { run, pending, error, fieldErrors } = useCommand();
  const [saved, setSaved] = useState(false);
  const [local, setLocal] = useState<FieldErrors>({});
  const { upload, uploading, uploadError } = useUploads();
  const currency = isMoney(seller?.hourly_rate) ? seller.hourly_rate.currency : "USD";
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setSaved(false);
    const form = new FormData(event.currentTarget);
    const rateText = String(form.get("hourly_rate") ?? "").trim();
    const rate = rateText ? parseMoney(rateText, currency) : null;
    setLocal(rate && !rate.ok ? { "hourly_rate.amount": [rate.error] } : {});
    if (rate && !rate.ok) return;
    const photo = await upload(chosenFiles(form, "photo"), "photo");
    if (!photo) return;
    const photo_file_id = photo[0] ?? seller?.photo_file_id ?? null;
    const done = await run((headers) =>
      api.PATCH("/api/v1/users/{user_id}/seller-profile", {
        params: { path: { user_id: userId } },
        headers,
        body: {
          headline: String(form.get("headline")),
          bio: String(form.get("bio")),
          skills: String(form.get("skills"))
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
          hourly_rate: rate?.ok ? { amount: rate.amount, currency } : null,
          photo_file_id,
        },
      }),
    );
    if (done) {
      setSaved(true);
      onSaved();
    }
  }
  return (
    <section className="card" aria-labelledby="edit-heading">
      <h2 id="edit-heading">Your seller profile</h2>
      <form onSubmit={submit} noValidate>
        <Field label="Headline" name="headline" errors={fieldErrors}>
          {(p) => <input {...p} defaultValue={seller?.headline ?? ""} />}
        </Field>
        <Field label="About you" name="bio" errors={fieldErrors}>
          {(p) => <textarea {...p} rows={4} defaultValue={seller?.bio ?? ""} />}
        </Field>
        <Field label="Skills" name="skills" errors={fieldErrors} hint="Comma-separated">
          {(p) => <input {...p} defaultValue={seller?.skills?.join(", ") ?? ""} />}
        </Field>
        <Field label={`Hourly rate (${currency})`} name="hourly_rate.amount" errors={{ ...fieldErrors, ...local }}>
          {(p) => (
            <input
              {...p}
              name="hourly_rate"
              inputMode="decimal"
              defaultValue={isMoney(seller?.hourly_rate) ? toDecimal(seller.hourly_rate.amount, currency) : ""}
            />
          )}
        </Field>
        <Field label="Photo" name="photo_file_id" errors={fieldErrors} hint="JPEG, PNG or WebP">
          {(p) => <input {...p} name="photo" type="file" accept="image/jpeg,image/png,image/webp" />}
        </Field>
        <ProblemNote error={uploadError} />
        <ProblemNote error={error} />
        {saved ? <p role="status">Saved.</p> : null}
        <button type="submit" disabled={pending || uploading}>
          Save profile
        </button>
      </form>
    </section>
  );
}

function PortfolioForm({ userId, onSaved }: { userId: string; onSaved: () => void }) {
  const { run, pending, error, fieldErrors } = useCommand();
  const { upload, uploading, uploadError } = useUploads();
  const [added, setAdded] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setAdded(false);
    const element = event.currentTarget;
    const form = new FormData(element);
    const file_ids = await upload(chosenFiles(form), "portfolio");
    if (!file_ids) return;
    const link = String(form.get("link") ?? "").trim();
    const done = await run((headers) =>
      api.POST("/api/v1/users/{user_id}/portfolio", {
        params: { path: { user_id: userId } },
        headers,
        body: {
          title: String(form.get("title")),
          description: String(form.get("description") ?? ""),
          links: link ? [link] : [],
          file_ids,
        },
      }),
    );
    if (done) {
      setAdded(true);
      element.reset();
      onSaved();
    }
  }
  return (
    <section className="card" aria-labelledby="portfolio-heading">
      <h2 id="portfolio-heading">Add to your portfolio</h2>
      <form onSubmit={submit} noValidate>
        <Field label="Title of the work" name="title" errors={fieldErrors}>
          {(p) => <input {...p} required />}
        </Field>
        <Field label="What you did" name="description" errors={fieldErrors}>
          {(p) => <textarea {...p} rows={3} />}
        </Field>
        <Field label="Link" name="links.0" errors={fieldErrors} hint="https://…">
          {(p) => <input {...p} name="link" type="url" />}
        </Field>
        <Field label="Files of the work" name="file_ids" errors={fieldErrors}>
          {(p) => <input {...p} name="files" type="file" multiple />}
        </Field>
        <ProblemNote error={uploadError} />
        <ProblemNote error={error} />
        {added ? <p role="status">Added to your portfolio.</p> : null}
        <button type="submit" disabled={pending || uploading}>
          Add the work
        </button>
      </form>
    </section>
  );
}

/** How complete the person's own profiles are, and what each still lacks. */
function Completeness({ completeness }: { completeness: Schemas["ProfileResponse"]["completeness"] }) {
  const parts = Object.entries(completeness ?? {}).filter(([, c]) => c.percent < 100);
  if (!parts.length) return null;
  return (
    <section className="card" aria-label="Profile completeness">
      {parts.map(([role, c]) => (
        <p key={role}>
          Your {role} profile is {c.percent}% complete{c.missing.length ? `: add ${c.missing.join(", ").replaceAll("_", " ")}` : ""}.
        </p>
      ))}
    </section>
  );
}

function BuyerCard({ buyer, reputation }: { buyer: Buyer | null; reputation: unknown }) {
  const website = buyer?.website ? safeLink(buyer.website) : null;
  return (
    <section className="card" aria-labelledby="business-heading">
      <h2 id="business-heading">{buyer?.company_name || "Buyer"}</h2>
      <ReputationLine reputation={reputation} />
      <p className="meta">
        {[buyer?.industry, buyer?.company_size ? `${buyer.company_size} people` : null].filter(Boolean).join(" · ")}
      </p>
      {buyer?.about ? <p className="prose">{buyer.about}</p> : null}
      {website ? (
        <p>
          <a href={website} rel="noopener noreferrer nofollow" target="_blank">
            {buyer?.website}
          </a>
        </p>
      ) : null}
    </section>
  );
}

const COMPANY_SIZES = ["1", "2-10", "11-50", "51-200", "201-1000", "1000+"] as const;
type CompanySize = (typeof COMPANY_SIZES)[number];

function BuyerProfileForm({ userId, buyer, onSaved }: { userId: string; buyer: Buyer | null; onSaved: () => void }) {
  const { run, pending, error, fieldErrors } = useCommand();
  const [saved, setSaved] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setSaved(false);
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? "").trim() || null;
    const size = text("company_size");
    const done = await run((headers) =>
      api.PATCH("/api/v1/users/{user_id}/buyer-profile", {
        params: { path: { user_id: userId } },
        headers,
        body: {
          company_name: text("company_name"),
          industry: text("industry"),
          company_size: COMPANY_SIZES.includes(size as CompanySize) ? (size as CompanySize) : null,
          website: text("website"),
          about: text("about"),
          project_types: String(form.get("project_types") ?? "")
            .split(",")
            .map((t) => t.trim())
            .filter(Boolean),
        },
      }),
    );
    if (done) {
      setSaved(true);
      onSaved();
    }
  }
  return (
    <section className="card" aria-labelledby="business-edit-heading">
      <h2 id="business-edit-heading">Your business profile</h2>
      <form onSubmit={submit} noValidate>
        <Field label="Company name" name="company_name" errors={fieldErrors}>
          {(p) => <input {...p} defaultValue={buyer?.company_name ?? ""} />}
        </Field>
        <div className="row">
          <Field label="Industry" name="industry" errors={fieldErrors}>
            {(p) => <input {...p} defaultValue={buyer?.industry ?? ""} />}
          </Field>
          <Field label="Company size" name="company_size" errors={fieldErrors}>
            {(p) => (
              <select {...p} defaultValue={buyer?.company_size ?? ""}>
                <option value="">Not said</option>
                {COMPANY_SIZES.map((size) => (
                  <option key={size} value={size}>
                    {size} people
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <Field label="Website" name="website" errors={fieldErrors} hint="https://…">
          {(p) => <input {...p} type="url" defaultValue={buyer?.website ?? ""} />}
        </Field>
        <Field label="About the business" name="about" errors={fieldErrors}>
          {(p) => <textarea {...p} rows={3} defaultValue={buyer?.about ?? ""} />}
        </Field>
        <Field label="Projects you hire for" name="project_types" errors={fieldErrors} hint="Comma-separated">
          {(p) => <input {...p} defaultValue={buyer?.project_types?.join(", ") ?? ""} />}
        </Field>
        <ProblemNote error={error} />
        {saved ? <p role="status">Business profile saved.</p> : null}
        <button type="submit" disabled={pending}>
          Save business profile
        </button>
      </form>
    </section>
  );
}
