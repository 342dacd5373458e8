"""`creditgym view`: a run's episodes in a browser, turn by turn with their credit.

    creditgym view runs/quickstart                 # serve on 127.0.0.1 and open the browser
    creditgym view runs/quickstart --export x.html # one self-contained file, no server

Reads the episode log (`creditgym.episode_log`) and the run's ``metrics.jsonl``.
"""

from creditgym.view.page import export_html, render_page
from creditgym.view.server import DEFAULT_PORT, make_server
from creditgym.view.store import EpisodeStore

__all__ = ["EpisodeStore", "make_server", "export_html", "render_page", "DEFAULT_PORT"]
