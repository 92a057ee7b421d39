"""The per-request (or per-WebSocket-connection) context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry

from services.auth import Principal
from services.gallery import GalleryService
from services.review import ReviewService
from services.uploads import UploadService


@dataclass(frozen=True, slots=True)
class Services:
    uploads: UploadService
    gallery: GalleryService
    review: ReviewService


@dataclass(slots=True)
class Context:
    services: Services
    request_id: str
    principal: Principal | None = None
    # graphql-transport-ws: the connection_init payload; Strawberry sets it on the context.
    connection_params: dict[str, Any] | None = field(default=None)


Info = strawberry.Info[Context, None]
