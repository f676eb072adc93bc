"""`shuku serve` and `shuku token create|revoke|list`: the HTTP interface and its callers' tokens."""

from __future__ import annotations

import click

from pipelines.cli_shared import Failed, Unusable, err, out, prepared_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep 127.0.0.1 behind a reverse proxy on the same machine.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--root-path", default="", help="The path prefix the reverse proxy serves this under, e.g. /shuku.")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For/-Proto headers are trusted.")
@click.option("--page-size", "max_page_size", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True,
              help="Most rows on one page.")
@click.option("--query-timeout", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True,
              help="Seconds before a query is interrupted.")
@click.option("--max-rows", type=click.IntRange(1, 10_000_000), default=50_000, show_default=True,
              help="Most rows one query may return.")
@click.option("--rate", type=click.FloatRange(0.1, 10_000), default=20.0, show_default=True,
              help="Requests per second per token.")
@click.option("--burst", type=click.IntRange(1, 100_000), default=40, show_default=True,
              help="Requests a token may make at once before --rate applies.")
def serve(host, port, root_path, forwarded_allow_ips, max_page_size, query_timeout, max_rows, rate, burst) -> None:
    """Start the read-only HTTP interface (OpenAPI description at /openapi.json)."""
    import uvicorn

    from pipelines.api import create_app
    from pipelines.api_callers import ApiLimits

    settings = prepared_settings()
    limits = ApiLimits(page_size=min(1_000, max_page_size), max_page_size=max_page_size, query_timeout_s=query_timeout,
                       max_query_rows=max_rows, rate_per_s=rate, burst=burst)
    app = create_app(settings, limits)
    if host not in ("127.0.0.1", "::1", "localhost"):
        err.print(f"[yellow]listening on {host}: anyone who reaches it can try tokens; prefer 127.0.0.1 behind "
                  "the university's reverse proxy (TLS there).[/yellow]")
    err.print(f"Shuku API on http://{host}:{port}{root_path} (OpenAPI at /openapi.json; Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, root_path=root_path, proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips, log_level="warning", access_log=False)


@click.group()
def token() -> None:
    """API tokens for `shuku serve`, each bound to one role (schemas/roles.yaml), stored hashed."""


def _token_admin(settings) -> None:
    """Refuse an account that does not hold a token-administering role (access.yaml's token_admins)."""
    from warehouse.grants import AccessConfigError, RoleNotGranted, require_token_admin

    try:
        require_token_admin(settings)
    except AccessConfigError as exc:
        raise Unusable(str(exc)) from None
    except RoleNotGranted as exc:
        raise Failed(str(exc)) from None


@token.command("create")
@click.option("--role", required=True, help="The role the caller acts as.")
@click.option("--name", required=True, help="The calling system, e.g. discovery-portal (logged as the user).")
def token_create(role: str, name: str) -> None:
    """Create a token; its secret is printed once and never stored."""
    from schemas.roles import UnknownRole
    from warehouse.tokens import TokenError, create_token

    settings = prepared_settings()
    _token_admin(settings)
    try:
        made, text = create_token(settings, role, name)
    except (UnknownRole, TokenError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(text)
    err.print(f"token {made.token_id} for {made.name}, role {made.role}: copy it now, it is not shown again.")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (`shuku token list`); a running server refuses it at the next request."""
    from warehouse.tokens import TokenError, revoke_token

    settings = prepared_settings()
    _token_admin(settings)
    try:
        revoked = revoke_token(settings, token_id)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"token {revoked.token_id} ({revoked.name}, role {revoked.role}) revoked at {revoked.revoked_at}")


@token.command("list")
def token_list() -> None:
    """The tokens: id, name, role, created, revoked (never their secrets)."""
    from rich.table import Table

    from warehouse.tokens import TokenError, load_tokens

    try:
        tokens = load_tokens(prepared_settings())
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table()
    for col in ("id", "name", "role", "created (UTC)", "revoked (UTC)"):
        table.add_column(col)
    for t in tokens:
        table.add_row(t.token_id, t.name, t.role, t.created_at, t.revoked_at or "")
    out.print(table)
