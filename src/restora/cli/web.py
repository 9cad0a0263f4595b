"""``restora web``: chat sessions on a web page (see :mod:`restora.web`).

Examples:
    restora web                                   # http://127.0.0.1:7860, sessions in the default home
    restora web --port 8080 --sessions ~/photos/sessions --allow denoise_nlm,denoise_srmd
    restora web --host 0.0.0.0 --auth me:secret   # reachable from the network (warns), with a login
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restora.cli.common import app, err, fail, out, split_csv, user_errors
from restora.imageio import DEFAULT_MAX_MEGAPIXELS
from restora.web import DEFAULT_HOST, DEFAULT_PORT, LOCAL_HOSTS, MAX_UPLOAD_MB, port_in_use


@app.command()
def web(
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port to serve on")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="the address to serve on; anything but 127.0.0.1/localhost makes the page reachable from other machines")] = DEFAULT_HOST,
    sessions: Annotated[Path | None, typer.Option(help="the sessions home (default: RESTORA_SESSIONS, else ~/.local/share/restora/sessions)")] = None,
    allow: Annotated[str | None, typer.Option(help="comma-separated tools the sessions may use (default: all available; see `restora tools`)")] = None,
    auth: Annotated[str | None, typer.Option(help="require a login, USER:PASSWORD")] = None,
    max_megapixels: Annotated[float, typer.Option(min=0.01, help="refuse larger uploads")] = DEFAULT_MAX_MEGAPIXELS,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="refuse upload files larger than this many megabytes")] = MAX_UPLOAD_MB,
    steps: Annotated[int | None, typer.Option(min=1, help="tool calls one message may make (default: the session's)")] = None,
) -> None:
    """Serve the chat page: upload a photo, say what you want, compare, undo, download.

    Each browser tab gets its own session, kept in a folder of the sessions home (resumable with
    `restora chat --resume ID`). Ctrl-C stops the server.
    """
    from restora.chat.session import TURN_STEPS, SessionServices, default_home
    from restora.cli.run import _check_usable, _known_tools
    from restora.web import WebConfig, serve

    login = None
    with user_errors():
        if auth is not None:
            user, sep, password = auth.partition(":")
            if not sep or not user or not password:
                raise ValueError("--auth takes USER:PASSWORD (both non-empty)")
            login = (user, password)
        names = _known_tools(split_csv(allow))
        services = SessionServices(allow=names, turn_steps=steps or TURN_STEPS)
        _check_usable(services.toolbox(), names)
        config = WebConfig(home=sessions or default_home(), allow=names, max_megapixels=max_megapixels,
                           max_upload_mb=max_upload_mb, turn_steps=steps, services=services)
        config.home.mkdir(parents=True, exist_ok=True)
    if host not in LOCAL_HOSTS:
        err.print(f"[yellow]warning:[/] serving on {host}: other machines can reach this page"
                  + ("" if login else " and anyone who can may open photos on it (add --auth USER:PASSWORD)") + ".",
                  highlight=False, soft_wrap=True)
    if port_in_use(host, port):
        raise fail(f"port {port} on {host} is in use (another restora web?); pick another with --port")

    def ready(url: str) -> None:
        out.print(f"restora web: {url} (sessions in {config.home}; Ctrl-C stops)", highlight=False, markup=False, soft_wrap=True)

    try:
        serve(config, host=host, port=port, auth=login, on_ready=ready)
    except OSError as e:  # the address is not this machine's
        raise fail(f"cannot serve on {host}:{port}: {e}") from None
