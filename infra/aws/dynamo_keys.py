"""The key schema of the one DynamoDB table: every partition and sort key format, and the index
keys, in one place. Adapters build keys only through these functions; the items they describe:

    pk=MEDIA#<id>          sk=META           a media record (infra/aws/dynamo.py)
      gsi1pk=OWNER#<owner>                   gsi1sk=<createdAt>#<id>   owner's timeline
      gsi2pk=OWNER#<owner>#<status>          gsi2sk=<createdAt>#<id>   owner's timeline by status
      gsi3pk=STATUS#<status>[#<visibility>]  gsi3sk=<createdAt>#<id>   everyone's, by status;
                                             COMPLETED is split by visibility: the public timeline;
                                             DELETED sorts by <purgeAfter>#<id>: the purge queue
      gsi4pk=SHA#<owner>#<sha256>            gsi4sk=<createdAt>#<id>   only while COMPLETED
    pk=MEDIA#<id>          sk=LIKE#<user>    one like (infra/aws/dynamo_engagement.py)
    pk=MEDIA#<id>          sk=STATS          like and view counters
    pk=TAG#<tag>           sk=<createdAt>#<id>   one per tag of a media: search across users
      gsi1pk=OWNERTAG#<owner>#<tag>          gsi1sk=<createdAt>#<id>   the owner's media by tag
    pk=OWNER#<owner>       sk=COUNTS         c_<STATUS> counters of the owner's media, and b_HELD:
                                             bytes in a held status (PENDING, PROCESSING,
                                             COMPLETED, QUARANTINED); createUpload's transaction
                                             is conditional on them (atomic quota reservation)
    pk=AUDIT#<mediaId>     sk=<entryId>      the audit trail (infra/aws/dynamo_audit.py)
    pk=IDEMP#<owner>#<key> sk=IDEMP          an idempotency claim (infra/aws/idempotency.py)
    pk=OUTBOX#<shard>      sk=<id>#<version>#<TYPE>   an event of a write, in the same
                                             transaction, until published (infra/aws/outbox.py)
    pk=USER#<user>         sk=PROFILE        a known user (infra/aws/dynamo_social.py)
    pk=USER#<a>            sk=REL#<b>        how A stands with B
      gsi1pk=RELSTATE#<a>#<state>            gsi1sk=<b>               A's friends, A's requests

The indexes themselves (names, key attributes) are created by infra/aws/resources.py from INDEXES.
"""

from __future__ import annotations

from typing import Any

# Index name -> (partition key attribute, sort key attribute).
INDEXES = {
    "gsi1": ("gsi1pk", "gsi1sk"),
    "gsi2": ("gsi2pk", "gsi2sk"),
    "gsi3": ("gsi3pk", "gsi3sk"),
    # Sparse: only COMPLETED records carry these keys, so the index follows deletes, quarantines
    # and restores by itself (a separate SHA item would need a second write on every change).
    "gsi4": ("gsi4pk", "gsi4sk"),
}

RECORD = "META"
STATS = "STATS"
COUNTS = "COUNTS"
PROFILE = "PROFILE"
IDEMPOTENCY = "IDEMP"

MEDIA_PREFIX = "MEDIA#"
USER_PREFIX = "USER#"
REL_PREFIX = "REL#"


def key(pk: str, sk: str) -> dict[str, Any]:
    """A primary key in the wire form."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def media(media_id: str) -> str:
    return f"{MEDIA_PREFIX}{media_id}"


def like(user_id: str) -> str:
    return f"LIKE#{user_id}"


def tag(name: str) -> str:
    return f"TAG#{name}"


def owner(owner_id: str) -> str:
    return f"OWNER#{owner_id}"


def owner_status(owner_id: str, status: str) -> str:
    return f"OWNER#{owner_id}#{status}"


def owner_tag(owner_id: str, name: str) -> str:
    return f"OWNERTAG#{owner_id}#{name}"


def status(status: str, visibility: str | None = None) -> str:
    return f"STATUS#{status}#{visibility}" if visibility is not None else f"STATUS#{status}"


def sha(owner_id: str, sha256: str) -> str:
    return f"SHA#{owner_id}#{sha256}"


def audit(media_id: str) -> str:
    return f"AUDIT#{media_id}"


def idempotency(owner_id: str, idempotency_key: str) -> str:
    return f"IDEMP#{owner_id}#{idempotency_key}"


def outbox(shard: int) -> str:
    return f"OUTBOX#{shard}"


def user(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def relation(other: str) -> str:
    return f"{REL_PREFIX}{other}"


def relation_state(user_id: str, state: str) -> str:
    return f"RELSTATE#{user_id}#{state}"
