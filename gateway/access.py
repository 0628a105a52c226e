"""Who may call a route, as its ``@endpoint`` declares: checked once, before
anything else of the request is read."""

from __future__ import annotations

from shared.auth import Principal
from shared.errors import EmailUnverified, Forbidden, Unauthorized


def permit(principal: Principal | None, role: str | None, verified: bool) -> None:
    """Refuse a caller without the route's ``role`` (a role the session lacks
    for want of a second factor says so), or whose address is not verified
    when the route needs it (identity's word in the token, when it issued it)."""
    if (role or verified) and principal is None:
        raise Unauthorized("log in first", {"reason": "missing"})
    if principal is None:
        return
    if role is not None and role in principal.withheld_roles:
        raise Forbidden(
            f"the {role} role needs two-factor sign-in: turn it on (POST /api/v1/me/two-factor)"
            " and log in again with a code from your authenticator app",
            {"reason": "two_factor_required"},
        )
    if role is not None and role not in principal.roles:
        raise Forbidden(f"only {role}s may do this; add the {role} role to your profile")
    if verified and not principal.email_verified:
        raise EmailUnverified(
            "verify your email address first: follow the link we mailed you "
            "(POST /api/v1/me/email/verification sends it again), then refresh your token",
            {"reason": "email_unverified"},
        )
