/** A buyer (desktop), a seller (phone) and an administrator (desktop) do the
 * whole journey in three browser contexts against the whole stack: sign up and
 * verify; the seller's profile with photo and portfolio, the buyer's business
 * profile; post a project with a file; find the seller and invite them; find
 * the project, open its brief, propose with a sample; shortlist, chat, offer
 * two milestones, accept (the seller sees the offer arrive live, without a
 * reload); fund, submit, approve; the buyer disputes the second milestone and
 * an administrator (made by the operators' command, signed in with a second
 * factor) reads the case and splits it; both review; the seller is paid out
 * and resets a forgotten password. Each main page is scanned with axe-core. */

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { TOTP, URI } from "otpauth";
import { BASE_URL, downloaded, grantAdmin, launch, mailedLink, screenshot, seriousViolations, until, type Finding } from "./browser";

const PASSWORD = "correct horse battery staple 42"; // pragma: allowlist secret
const run = randomUUID().slice(0, 8);
const buyerEmail = `buyer-${run}@example.com`;
const sellerEmail = `seller-${run}@example.com`;
const adminEmail = `admin-${run}@example.com`;
const keyword = `Lighthouse${run}`;

let browser: Browser;
let buyerContext: BrowserContext;
let sellerContext: BrowserContext;
let adminContext: BrowserContext;
let buyer: Page;
let seller: Page;
let admin: Page;
let contractUrl = "";
const findings: Finding[] = [];

async function scan(page: Page, name: string) {
  findings.push(...(await seriousViolations(page, name)));
  await screenshot(page, name);
}

async function signUp(page: Page, email: string, role: "buyer" | "seller") {
  await page.goto(`${BASE_URL}/signup`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  const hire = page.getByLabel("hire (buyer)");
  const work = page.getByLabel("work (seller)");
  if (role === "seller") {
    await hire.uncheck();
    await work.check();
  }
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Check your mail" }).waitFor();
  await page.goto(await mailedLink(email, "/verify-email"));
  await page.getByText("Your address is verified.").waitFor();
  await page.goto(`${BASE_URL}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** Reload until an element's whole text is `text` (or matches it): the read
 * side follows the write a moment later. */
async function reloadUntil(page: Page, text: string | RegExp) {
  const target = () => page.getByText(text, { exact: true }).first();
  await until(`"${text}" on ${page.url()}`, async () => {
    if (await target().isVisible()) return true;
    await page.reload();
    await target().waitFor({ timeout: 2000 });
    return true;
  }, 60_000);
}

beforeAll(async () => {
  browser = await launch();
  buyerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  sellerContext = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  adminContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  buyer = await buyerContext.newPage();
  seller = await sellerContext.newPage();
  admin = await adminContext.newPage();
});

afterAll(async () => {
  await browser?.close();
});

describe("the buyer's and the seller's journey", () => {
  it("signs both up, through the mailed verification link", async () => {
    await buyer.goto(`${BASE_URL}/`);
    await scan(buyer, "home");
    await buyer.goto(`${BASE_URL}/signup`);
    await scan(buyer, "sign-up");
    // A weak password is refused next to its field, in the API's words.
    await buyer.getByLabel("Email").fill(buyerEmail);
    await buyer.getByLabel("Password").fill("short");
    await buyer.getByRole("button", { name: "Sign up" }).click();
    await buyer.getByText("Use at least 12 characters.").waitFor();
    expect(await buyer.getByLabel("Password").getAttribute("aria-invalid")).toBe("true");
    await signUp(buyer, buyerEmail, "buyer");
    await signUp(seller, sellerEmail, "seller");
  });

  it("lets the seller build a profile", async () => {
    await seller.getByRole("link", { name: "Profile" }).click();
    await seller.getByLabel("Headline").fill(`Lighthouse engineer ${run}`);
    await seller.getByLabel("About you").fill("Ten years of web backends.");
    await seller.getByLabel("Skills").fill("python, postgresql");
    await seller.getByLabel("Hourly rate (USD)").fill("85");
    // A real image: a corner of the page itself, as a PNG.
    const photo = await seller.screenshot({ clip: { x: 0, y: 0, width: 64, height: 64 } });
    await seller.getByLabel("Photo").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: photo });
    await seller.getByRole("button", { name: "Save profile" }).click();
    await seller.getByText("Saved.").waitFor();
    await seller.getByLabel("Title of the work").fill("Harbour booking system");
    await seller.getByLabel("What you did").fill("Bookings and payments for a marina.");
    await seller.getByLabel("Link", { exact: true }).fill("https://example.com/harbour");
    await seller.getByLabel("Files of the work").setInputFiles({ name: "harbour.png", mimeType: "image/png", buffer: photo });
    await seller.getByRole("button", { name: "Add the work" }).click();
    await seller.getByText("Added to your portfolio.").waitFor();
    await reloadUntil(seller, "Harbour booking system");
    await seller.getByRole("img", { name: "Profile photo" }).waitFor();
    await seller.getByRole("img", { name: "harbour.png" }).waitFor();
    expect(await seller.getByText("$85.00").first().isVisible()).toBe(true);
    await scan(seller, "profile");
    await seller.getByRole("link", { name: "Alerts" }).click();
    await seller.getByLabel("Name").fill("Lighthouse work");
    await seller.getByLabel("Keywords").fill(keyword);
    await seller.getByRole("button", { name: "Save alert" }).click();
    await reloadUntil(seller, new RegExp(`Lighthouse work: ${keyword}`));
  });

  it("lets the buyer complete a business profile", async () => {
    await buyer.getByRole("link", { name: "Profile" }).click();
    await buyer.getByText(/^Your buyer profile is \d+% complete/).waitFor();
    await buyer.getByLabel("Company name").fill(`Harbour Lights ${run}`);
    await buyer.getByLabel("Industry").fill("Maritime");
    await buyer.getByLabel("Company size").selectOption("11-50");
    await buyer.getByLabel("Website").fill("https://example.com/harbour-lights");
    await buyer.getByLabel("About the business").fill("Lighthouse tours along the coast.");
    await buyer.getByRole("button", { name: "Save business profile" }).click();
    await buyer.getByText("Business profile saved.").waitFor();
    await reloadUntil(buyer, `Harbour Lights ${run}`);
    expect(await buyer.getByText("Maritime · 11-50 people").isVisible()).toBe(true);
    await scan(buyer, "business-profile");
  });

  let projectUrl = "";
  it("posts a project with a file", async () => {
    await buyer.getByRole("link", { name: "Post a project" }).first().click();
    await buyer.getByRole("heading", { name: "Post a project" }).waitFor();
    await scan(buyer, "post-project");
    await buyer.getByLabel("Title").fill(`${keyword} rebuild`);
    await buyer.getByLabel("Description").fill(`Rebuild the ${keyword} service on PostgreSQL.`);
    await buyer.getByLabel("Skills").fill("python, postgresql");
    // Money is typed as a person writes it; a third decimal is refused before sending.
    await buyer.getByLabel("Fixed price").fill("1,250.505");
    await buyer.getByLabel("Deadline").fill("2027-06-30");
    await buyer.getByRole("button", { name: "Post project" }).click();
    await buyer.getByText("At most 2 decimals in USD.").waitFor();
    await buyer.getByLabel("Fixed price").fill("1,250.50");
    await buyer.getByLabel("Files").setInputFiles({ name: "brief.txt", mimeType: "text/plain", buffer: Buffer.from("the brief") });
    await buyer.getByRole("button", { name: "Post project" }).click();
    await buyer.getByRole("heading", { name: `${keyword} rebuild` }).waitFor();
    expect(await buyer.getByText("$1,250.50").first().isVisible()).toBe(true);
    await buyer.getByRole("list", { name: "Attached files" }).getByRole("button", { name: "brief.txt" }).waitFor();
    projectUrl = buyer.url();
  });

  it("lets the buyer find the seller, invite them, and talk before any proposal", async () => {
    await buyer.getByRole("link", { name: "Freelancers" }).click();
    await buyer.getByLabel("Keywords").fill(`Lighthouse engineer ${run}`);
    await buyer.getByRole("textbox", { name: "Skills" }).fill("python");
    await buyer.getByRole("button", { name: "Search" }).click();
    await reloadUntil(buyer, `Lighthouse engineer ${run}`);
    const card = buyer.locator(".card", { has: buyer.getByRole("link", { name: `Lighthouse engineer ${run}`, exact: true }) });
    await card.getByRole("button", { name: "Save", exact: true }).click();
    await card.getByRole("button", { name: "Saved", exact: true }).waitFor();
    await scan(buyer, "freelancers");
    await card.getByRole("button", { name: "Invite to a project" }).click();
    await buyer.getByLabel("Project").selectOption({ label: `${keyword} rebuild` });
    await buyer.getByLabel("Message to the freelancer").fill("Your harbour work is close to what we need.");
    await buyer.getByRole("button", { name: "Send invitation" }).click();
    await buyer.getByText("Invitation sent.").waitFor();
    await buyer.getByRole("link", { name: "Saved", exact: true }).click();
    await reloadUntil(buyer, `Lighthouse engineer ${run}`);
    await seller.getByRole("link", { name: "Invitations" }).click();
    await reloadUntil(seller, "Your harbour work is close to what we need.");
    await scan(seller, "invitations");
    await seller.getByRole("button", { name: "Accept and talk" }).click();
    await seller.getByRole("heading", { name: "Conversation" }).waitFor();
    await seller.getByLabel("Message", { exact: true }).fill("Happy to: what does the brief leave open?");
    await seller.getByRole("button", { name: "Send", exact: true }).click();
    await seller.getByText("Happy to: what does the brief leave open?").waitFor();
  });

  it("lets the seller find it by keyword and send a proposal", async () => {
    await seller.goto(`${BASE_URL}/alerts`);
    await reloadUntil(seller, `${keyword} rebuild`); // the saved alert matched it
    await scan(seller, "alerts");
    await seller.goto(`${BASE_URL}/projects?q=${keyword}`);
    await reloadUntil(seller, `${keyword} rebuild`);
    await scan(seller, "projects");
    await seller.getByRole("link", { name: `${keyword} rebuild` }).click();
    await seller.getByRole("heading", { name: "Send a proposal" }).waitFor();
    await scan(seller, "project");
    // The brief the buyer attached opens for the seller.
    expect(await downloaded(seller, "brief.txt")).toBe("the brief");
    await seller.getByLabel("Cover letter").fill("I have rebuilt three of these.");
    await seller.getByLabel("Price (USD)").fill("1200");
    await seller.getByLabel("Harbour booking system").check();
    await seller.getByRole("button", { name: "Send proposal" }).click();
    await seller.getByRole("heading", { name: "My proposals" }).waitFor();
    await reloadUntil(seller, "submitted");
  });

  it("lets the buyer compare, shortlist and send an offer; the seller sees it arrive live", async () => {
    await buyer.goto(projectUrl);
    await reloadUntil(buyer, new RegExp(`Lighthouse engineer ${run}`));
    expect(await buyer.getByText("New on the marketplace").first().isVisible()).toBe(true);
    // The seller's sample, shown with the proposal, opens for the buyer.
    const sample = buyer.getByRole("list", { name: "Samples" }).getByRole("link", { name: "Harbour booking system" });
    const href = await sample.getAttribute("href");
    expect((await buyer.request.get(`${BASE_URL}${href}`)).headers()["content-type"]).toMatch(/^image\/png/);
    await buyer.getByRole("button", { name: "Shortlist" }).click();
    await reloadUntil(buyer, "Shortlisted");
    await scan(buyer, "proposals");
    // The seller sits on a page with no reload while the buyer writes, then offers.
    await seller.goto(`${BASE_URL}/me/proposals`);
    await seller.getByRole("heading", { name: "My proposals" }).waitFor();
    // What comes before the page's stream opens is counted by the bell, not shown live.
    await seller.locator("html[data-live='open']").waitFor();
    await buyer.getByRole("button", { name: "Chat" }).click();
    await buyer.getByRole("heading", { name: "Conversation" }).waitFor();
    await buyer.getByLabel("Message", { exact: true }).fill("Could you start on Monday?");
    await buyer.getByRole("button", { name: "Send", exact: true }).click();
    await buyer.getByText("Could you start on Monday?").waitFor();
    await seller.locator(".toast").getByText("New message").waitFor({ timeout: 30_000 });
    await seller.locator(".toast").getByRole("link").click();
    await reloadUntil(seller, "Could you start on Monday?");
    await seller.getByLabel("Message", { exact: true }).fill("Yes, and here is my plan.");
    await seller.getByLabel("Files").setInputFiles({ name: "plan.txt", mimeType: "text/plain", buffer: Buffer.from("week 1: schema") });
    await seller.getByRole("button", { name: "Send", exact: true }).click();
    await reloadUntil(buyer, "Yes, and here is my plan.");
    await buyer.getByRole("button", { name: "plan.txt" }).waitFor();
    await scan(buyer, "conversation");
    await buyer.goto(projectUrl);
    await buyer.getByRole("button", { name: "Send an offer" }).click();
    await buyer.getByLabel("Amount (USD)").fill("1200");
    await buyer.getByRole("button", { name: "Add a milestone" }).click();
    const handover = buyer.getByRole("group", { name: "Milestone 2" });
    await handover.getByLabel("Title").fill("Handover");
    await handover.getByLabel("Amount (USD)").fill("200");
    // The seller reloaded the conversation: the offer is shown live once the new page's stream is open.
    await seller.locator("html[data-live='open']").waitFor();
    await buyer.getByRole("button", { name: "Send offer" }).click();
    await buyer.getByRole("heading", { name: "Contract" }).waitFor();
    await buyer.getByText("Waiting for the seller to answer the offer.").waitFor();
    const toast = seller.locator(".toast");
    await toast.getByText("You received an offer").waitFor({ timeout: 30_000 });
    await screenshot(seller, "live-notification");
    await toast.getByRole("link").click();
    // The seller asks for more; the buyer reads it and sends a second version.
    await seller.getByRole("button", { name: "Ask for changes" }).click();
    await seller.getByLabel("What should change").fill("Make it $1,300: the data migration is bigger.");
    await seller.getByRole("button", { name: "Send the request" }).click();
    await reloadUntil(buyer, /Make it \$1,300/);
    await buyer.getByRole("button", { name: "Revise offer" }).click();
    await buyer.getByRole("group", { name: "Milestone 1" }).getByLabel("Amount (USD)").fill("1300");
    await buyer.getByRole("button", { name: "Send the revised offer" }).click();
    await reloadUntil(seller, /^Version 2/);
    await scan(seller, "offer-versions");
    await seller.getByRole("button", { name: "Accept offer" }).click();
    await reloadUntil(seller, "active");
  });

  it("funds the milestone, takes the work, approves it and releases the money", async () => {
    await buyer.reload();
    contractUrl = buyer.url();
    await buyer.getByRole("button", { name: "Fund $1,300.00 into escrow" }).click();
    await reloadUntil(buyer, "funded");
    await scan(buyer, "contract");
    await reloadUntil(seller, "Submit work");
    await seller.getByRole("button", { name: "Submit work" }).click();
    await seller.getByLabel("What you deliver").fill("Done: the service runs on PostgreSQL.");
    await seller.getByRole("button", { name: "Submit for review" }).click();
    await reloadUntil(buyer, "Approve and release payment");
    await buyer.getByRole("button", { name: "Approve and release payment" }).click();
    await reloadUntil(buyer, /^(approved|paid)$/);
  });

  it("lets the buyer dispute the second milestone, and an administrator who read the work room split it", async () => {
    await buyer.getByRole("button", { name: "Fund $200.00 into escrow" }).click();
    await seller.reload();
    await reloadUntil(seller, "Submit work");
    await seller.getByRole("button", { name: "Submit work" }).click();
    await seller.getByLabel("What you deliver").fill("The handover notes.");
    await seller.getByLabel("Delivered files").setInputFiles({ name: "handover.txt", mimeType: "text/plain", buffer: Buffer.from("notes, no runbook") });
    await seller.getByRole("button", { name: "Submit for review" }).click();
    await buyer.reload();
    await reloadUntil(buyer, "Dispute");
    await buyer.getByRole("button", { name: "Work room" }).click();
    await buyer.getByRole("heading", { name: "Conversation" }).waitFor();
    await buyer.getByLabel("Message", { exact: true }).fill("The handover notes have no runbook.");
    await buyer.getByRole("button", { name: "Send", exact: true }).click();
    await buyer.getByText("The handover notes have no runbook.").waitFor();
    await buyer.goto(contractUrl);
    await buyer.getByRole("button", { name: "Dispute", exact: true }).click();
    await buyer.getByLabel("What is wrong with the work").fill("No runbook, as agreed in the scope.");
    await buyer.getByRole("button", { name: "Open the dispute" }).click();
    await reloadUntil(buyer, "disputed");

    // An operator makes a registered person an administrator; the role needs a second factor.
    await signUp(admin, adminEmail, "buyer");
    grantAdmin(adminEmail);
    await admin.getByRole("link", { name: "Account" }).click();
    await admin.getByRole("form", { name: "Start two-factor sign-in" }).getByLabel("Current password").fill(PASSWORD);
    await admin.getByRole("button", { name: "Set up an authenticator app" }).click();
    const uri = await admin.getByRole("link", { name: "this link" }).getAttribute("href");
    const app = URI.parse(uri ?? "");
    if (!(app instanceof TOTP)) throw new Error(`not a TOTP URI: ${uri}`);
    await scan(admin, "two-factor");
    await admin.getByLabel("Code from the app").fill(app.generate());
    await admin.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
    await admin.getByText("Your recovery codes.").waitFor();
    await admin.getByRole("button", { name: "Sign out", exact: true }).click();
    await admin.getByLabel("Email").fill(adminEmail);
    await admin.getByLabel("Password").fill(PASSWORD);
    await admin.getByRole("button", { name: "Sign in" }).click();
    await admin.getByRole("heading", { name: "Two-factor sign-in" }).waitFor();
    // A code is taken once: the next time step's (one step of drift is allowed).
    await admin.getByLabel("Code from your authenticator app").fill(app.generate({ timestamp: Date.now() + app.period * 1000 }));
    await admin.getByRole("button", { name: "Sign in" }).click();
    await admin.getByRole("link", { name: "Disputes" }).click();
    const contractId = new URL(contractUrl).pathname.split("/").pop() ?? "";
    await reloadUntil(admin, `Case ${contractId.slice(0, 8)}`);
    await scan(admin, "disputes");
    await admin.getByRole("link", { name: `Case ${contractId.slice(0, 8)}` }).click();
    await admin.getByRole("heading", { name: "Dispute case" }).waitFor();
    await admin.getByText("The handover notes have no runbook.").waitFor();
    expect(await downloaded(admin, "handover.txt")).toBe("notes, no runbook");
    await scan(admin, "dispute-case");
    await admin.getByLabel("To the seller (USD)").fill("100");
    await admin.getByLabel("Note to both parties").fill("Half: the notes are there, the runbook is not.");
    await admin.getByRole("button", { name: "Resolve" }).click();
    await admin.getByText("Resolved: the money held moves as you decided.").waitFor();
    await buyer.reload();
    await reloadUntil(buyer, "Send review");
  });

  it("lets both review each other", async () => {
    await buyer.getByLabel("Your review").fill("Fast and careful.");
    // By keyboard, as a person who does not use a mouse would.
    await buyer.getByRole("button", { name: "Send review" }).press("Enter");
    await buyer.getByText("Thank you: your review is in.").waitFor();
    await seller.reload();
    await reloadUntil(seller, "Send review");
    await seller.getByLabel("Your review").fill("Clear brief, paid at once.");
    await seller.getByRole("button", { name: "Send review" }).press("Enter");
    await seller.getByText("Thank you: your review is in.").waitFor();
    await buyer.reload();
    await reloadUntil(buyer, /Clear brief, paid at once\./);
    await buyer.goto(`${BASE_URL}/notifications`);
    await buyer.getByRole("heading", { name: "Notifications" }).waitFor();
    await scan(buyer, "notifications");
  });

  it("shows the seller's money, and the statement as CSV", async () => {
    await seller.goto(`${BASE_URL}/me/money`);
    await reloadUntil(seller, /Download CSV/);
    await seller.getByRole("cell", { name: "USD" }).waitFor();
    // The released milestone, to the cent, as the API's minor units say.
    await seller.getByRole("cell", { name: "$1,300.00" }).first().waitFor();
    await scan(seller, "money");
    await seller.getByRole("button", { name: "Pay out to your account" }).click();
    await seller.getByText(/^Payout of \$1,260\.00: /).waitFor();
    await reloadUntil(seller, "Nothing to pay out: released milestones add to what is available.");
    const csv = await downloaded(seller, "Download CSV");
    expect(csv.split("\n")[0]).toMatch(/amount/);
    expect(csv).toMatch(/USD/);
  });

  it("lets the seller reset a forgotten password by the mailed link", async () => {
    await seller.getByRole("button", { name: "Sign out" }).click();
    await seller.getByRole("link", { name: "Forgot your password?" }).click();
    await seller.getByLabel("Email").fill(sellerEmail);
    await seller.getByRole("button", { name: "Send the link" }).click();
    await seller.getByText(/a link to choose a new password is on its way/).waitFor();
    await seller.goto(await mailedLink(sellerEmail, "/reset-password"));
    await seller.getByLabel("New password").fill(`${PASSWORD} renewed`);
    await seller.getByRole("button", { name: "Change password" }).click();
    await seller.getByText(/Your password is changed/).waitFor();
    await seller.getByRole("link", { name: "Sign in" }).last().click();
    await seller.getByLabel("Email").fill(sellerEmail);
    await seller.getByLabel("Password").fill(`${PASSWORD} renewed`);
    await seller.getByRole("button", { name: "Sign in" }).click();
    await seller.getByRole("button", { name: "Sign out" }).waitFor();
  });

  it("finds no serious or critical accessibility violation on any page", () => {
    expect(findings).toEqual([]);
  });
});
