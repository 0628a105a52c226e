import { BrowserRouter, Link, NavLink, Route, Routes, useNavigate } from "react-router";
import { NotificationBell, NotificationStream, NotificationsPage } from "./components/notifications";
import { hasRole, useSession } from "./components/session";
import { AccountPage } from "./pages/account";
import { DisputeCasePage, DisputesPage } from "./pages/admin";
import { AlertsPage } from "./pages/alerts";
import { ForgotPasswordPage, LogInPage, logOut, ResetPasswordPage, SignUpPage, VerifyEmailPage } from "./pages/auth";
import { ContractPage, MyContractsPage } from "./pages/contract";
import { ConversationPage, ConversationsPage } from "./pages/messages";
import { MoneyPage } from "./pages/money";
import { ProfilePage } from "./pages/profile";
import { MyProposalsPage, ProjectPage } from "./pages/project";
import { MyProjectsPage, PostProjectPage, ProjectsPage } from "./pages/projects";
import { InvitationsPage, SavedFreelancersPage, TalentPage } from "./pages/talent";

function Header() {
  const tokens = useSession();
  const navigate = useNavigate();
  return (
    <header className="top">
      <Link to="/" className="brand">
        Marketplace
      </Link>
      <nav aria-label="Main">
        <NavLink to="/projects">Projects</NavLink>
        {hasRole(tokens, "buyer") ? <NavLink to="/projects/new">Post a project</NavLink> : null}
        {hasRole(tokens, "buyer") ? <NavLink to="/me/projects">My projects</NavLink> : null}
        <NavLink to="/freelancers">Freelancers</NavLink>
        {hasRole(tokens, "buyer") ? <NavLink to="/me/saved">Saved</NavLink> : null}
        {hasRole(tokens, "seller") ? <NavLink to="/me/proposals">My proposals</NavLink> : null}
        {hasRole(tokens, "seller") ? <NavLink to="/me/invitations">Invitations</NavLink> : null}
        {hasRole(tokens, "seller") ? <NavLink to="/alerts">Alerts</NavLink> : null}
        {tokens ? <NavLink to="/me/contracts">Contracts</NavLink> : null}
        {tokens ? <NavLink to="/messages">Messages</NavLink> : null}
        {tokens ? <NavLink to="/me/money">Money</NavLink> : null}
        {tokens ? <NavLink to={`/users/${tokens.user_id}`}>Profile</NavLink> : null}
        {tokens ? <NavLink to="/account">Account</NavLink> : null}
        {hasRole(tokens, "admin") ? <NavLink to="/admin/disputes">Disputes</NavLink> : null}
        {tokens ? <NotificationBell /> : null}
        {tokens ? (
          <button
            type="button"
            className="link"
            onClick={() => void logOut().then(() => navigate("/login"))}
          >
            Sign out
          </button>
        ) : (
          <>
            <NavLink to="/login">Sign in</NavLink>
            <NavLink to="/signup">Sign up</NavLink>
          </>
        )}
      </nav>
    </header>
  );
}

function Home() {
  const tokens = useSession();
  return (
    <section className="card">
      <h1>Hire and get hired</h1>
      <p>Buyers post projects and pay through escrow; sellers send proposals and get paid by milestone.</p>
      <p className="actions">
        <Link to="/projects" className="button">
          Browse projects
        </Link>
        {hasRole(tokens, "buyer") ? (
          <Link to="/projects/new" className="button primary">
            Post a project
          </Link>
        ) : null}
        {!tokens ? (
          <Link to="/signup" className="button primary">
            Sign up
          </Link>
        ) : null}
      </p>
      {tokens && !tokens.email_verified ? (
        <p className="problem" role="status">
          Verify your email address to post projects and send proposals: open the link we mailed you.
        </p>
      ) : null}
    </section>
  );
}

function NotFound() {
  return (
    <section className="card">
      <h1>Page not found</h1>
      <p>
        <Link to="/">Back to the start</Link>
      </p>
    </section>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <Header />
      <NotificationStream />
      <main id="main">
        <Routes>
          <Route path="/" element={<Home />} />
          <Route path="/signup" element={<SignUpPage />} />
          <Route path="/login" element={<LogInPage />} />
          <Route path="/verify-email" element={<VerifyEmailPage />} />
          <Route path="/forgot-password" element={<ForgotPasswordPage />} />
          <Route path="/reset-password" element={<ResetPasswordPage />} />
          <Route path="/alerts" element={<AlertsPage />} />
          <Route path="/messages" element={<ConversationsPage />} />
          <Route path="/messages/:conversationId" element={<ConversationPage />} />
          <Route path="/me/money" element={<MoneyPage />} />
          <Route path="/projects" element={<ProjectsPage />} />
          <Route path="/projects/new" element={<PostProjectPage />} />
          <Route path="/projects/:projectId" element={<ProjectPage />} />
          <Route path="/me/proposals" element={<MyProposalsPage />} />
          <Route path="/me/projects" element={<MyProjectsPage />} />
          <Route path="/freelancers" element={<TalentPage />} />
          <Route path="/me/saved" element={<SavedFreelancersPage />} />
          <Route path="/me/invitations" element={<InvitationsPage />} />
          <Route path="/me/contracts" element={<MyContractsPage />} />
          <Route path="/contracts/:contractId" element={<ContractPage />} />
          <Route path="/users/:userId" element={<ProfilePage />} />
          <Route path="/notifications" element={<NotificationsPage />} />
          <Route path="/account" element={<AccountPage />} />
          <Route path="/admin/disputes" element={<DisputesPage />} />
          <Route path="/admin/disputes/:contractId" element={<DisputeCasePage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </BrowserRouter>
  );
}
