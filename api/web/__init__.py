"""Our own web app, served at /app: static files (index.html, app.js, app.css), no build step."""

from pathlib import Path

from starlette.staticfiles import StaticFiles

FOLDER = Path(__file__).parent / "static"  # only these files are served
# Scripts, styles and requests only from here; songs may stream from a provider's URL while they are being made.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "media-src 'self' https: http:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
          "frame-ancestors 'none'; form-action 'self'")


class WebApp(StaticFiles):
    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-cache"  # small files, revalidated by ETag: a deploy shows at once
        return response


def web_app() -> WebApp:
    return WebApp(directory=FOLDER, html=True)
