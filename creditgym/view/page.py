"""The viewer's one HTML page, for the server or as a self-contained export.

The page's CSS and JavaScript ship inside the package (``creditgym/view/static/``) and are
inlined, so nothing is fetched from anywhere: the server's page asks only its own API, and an
exported page carries its data in a ``<script type="application/json">`` block and asks nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from creditgym.episode_log import jsonable
from creditgym.view.store import EpisodeStore

__all__ = ["render_page", "export_html", "content_security_policy", "DEFAULT_EXPORT_LIMIT"]

DEFAULT_EXPORT_LIMIT = 2000  # episodes in an exported file (the newest)


def _static(name: str) -> str:
    return resources.files("creditgym.view").joinpath("static", name).read_text(encoding="utf-8")


def content_security_policy(nonce: str, *, served: bool) -> str:
    """Only the page's own script runs; a served page may ask its own origin, an export nothing."""
    connect = "'self'" if served else "'none'"
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        f"connect-src {connect}; img-src data:; base-uri 'none'; form-action 'none'"
    )


def _embedded_json(data: Any) -> str:
    """JSON that cannot end its <script> block: '<', '>' and '&' as \\u escapes."""
    text = json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(nonce: str, data: Any = None) -> str:
    """The HTML page; with `data` (an export) it embeds it and needs no server."""
    block = (
        f'<script type="application/json" id="creditgym-data">{_embedded_json(data)}</script>'
        if data is not None
        else ""
    )
    parts = {
        "CSP": content_security_policy(nonce, served=data is None),
        "CSS": _static("viewer.css"),
        "JS": _static("viewer.js"),
        "DATA": block,
        "NONCE": nonce,
    }
    # one pass, so nothing substituted is read again as a placeholder
    return re.sub(
        r"\{\{(CSP|CSS|JS|DATA|NONCE)\}\}", lambda m: parts[m.group(1)], _static("viewer.html")
    )


def export_html(
    store: EpisodeStore, out: str | Path, limit: int = DEFAULT_EXPORT_LIMIT
) -> dict[str, Any]:
    """Write one self-contained HTML file of the newest `limit` episodes and the metrics.

    Returns what went in: ``{"episodes": n, "left_out": m, "path": ...}``.
    """
    summaries = store.summaries()
    kept = summaries[-limit:] if limit > 0 else summaries
    records = {str(s["id"]): store.episode(s["id"]) for s in kept}
    overview = store.overview()
    left_out = len(summaries) - len(kept)
    if left_out:
        overview["notices"].append(
            f"this export holds the newest {len(kept)} of {len(summaries)} episodes "
            "(creditgym view --export-limit N to change)"
        )
    data = {"overview": overview, "summaries": kept, "records": records, "metrics": store.metrics()}
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(secrets.token_urlsafe(16), data), encoding="utf-8")
    return {"episodes": len(kept), "left_out": left_out, "path": str(path)}
