"""One router per resource; each route declares its action through ``require``."""
