"""Query parameters every list route takes."""

from __future__ import annotations

from fastapi import Depends, Query

from shipyard.api.deps import Services, get_services
from shipyard.domain.errors import InvalidInputError


class PageParams:
    def __init__(
        self,
        page_token: str | None = Query(None, description="next_page_token from the last page"),
        max_results: int | None = Query(None, ge=1, description="Items per page."),
        services: Services = Depends(get_services),
    ) -> None:
        settings = services.settings
        size = max_results or settings.default_page_size
        if size > settings.max_page_size:
            raise InvalidInputError(
                f"max_results may be at most {settings.max_page_size}",
                code="page_too_large",
                field="max_results",
            )
        self.page_token = page_token
        self.max_results = size
