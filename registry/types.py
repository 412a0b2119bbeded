"""Types every app shares."""

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User

# Who performs a write: an authenticated user (AUTH_USER_MODEL is Django's own User).
Actor: TypeAlias = User
# Who reads: reads also answer anonymous callers, who see only what is public.
Reader: TypeAlias = User | AnonymousUser
