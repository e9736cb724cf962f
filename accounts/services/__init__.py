"""User management rules, enforced here so the page, the admin and the API agree.

- Only admins (staff) manage users.
- Nobody deletes root or themselves; a non-root admin cannot delete another admin.
- Root changes anyone's password; a non-root admin cannot change another admin's.
- Only root grants or revokes the admin role; root itself is never demoted.
- E-mail addresses follow the password rules: root changes anyone's, an admin a
  plain user's (never another admin's or root's), a user their own. An address
  given when the account is created, or set by root, is verified; any other change
  is unverified until the user confirms it from allauth's mail, and a password
  reset only goes to a verified address (accounts.adapters).

One module per entity: `users` (accounts and roles), `email_addresses`, `tokens`
(API tokens and ending credentials), `two_factor`, `activity` (the log), and
`rules` (who may manage whom). Callers use the names below.
"""

from accounts.services.activity import activity_log, client_ip
from accounts.services.email_addresses import email_log_allauth, email_record_initial, email_validate, user_set_email
from accounts.services.rules import can_delete, can_set_admin, can_set_email, can_set_password
from accounts.services.tokens import (
    MAX_KEY_CHARS, TOKEN_NAME_MAX, TOKEN_NAME_MESSAGE, TOKEN_NAME_PATTERN, token_authenticate, token_create,
    token_lifetime_choices, token_revoke, user_credentials_end,
)
from accounts.services.two_factor import two_factor_enrolled, two_factor_verify
from accounts.services.users import (
    user_create, user_create_problems, user_delete, user_ensure_root, user_set_admin, user_set_password,
)

__all__ = [
    "MAX_KEY_CHARS", "TOKEN_NAME_MAX", "TOKEN_NAME_MESSAGE", "TOKEN_NAME_PATTERN", "activity_log", "can_delete",
    "can_set_admin", "can_set_email", "can_set_password", "client_ip", "email_log_allauth", "email_record_initial",
    "email_validate", "token_authenticate", "token_create", "token_lifetime_choices", "token_revoke",
    "two_factor_enrolled", "two_factor_verify", "user_create", "user_create_problems", "user_credentials_end", "user_delete",
    "user_ensure_root", "user_set_admin", "user_set_email", "user_set_password",
]
