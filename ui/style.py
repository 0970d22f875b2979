"""The page's look: large type for a tablet on the floor, a compact header on a phone, and icons.

Icons are the SVG files in ``ui/icons/`` drawn as CSS masks (``currentColor``), so they ship with
the page and render on a box without an emoji font. Layout rules for narrow screens keep the
question box and the last answer on the first screen: the chat's height follows the viewport,
the sources panel goes below the chat and the tab bar scrolls instead of overflowing.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

ICONS = Path(__file__).with_name("icons")

# element → icon file (without .svg); the tab buttons are Gradio's "<elem_id>-button"
ICON_OF = {
    "#onsite-tab-chat-button": "chat",
    "#onsite-tab-inspect-button": "camera",
    "#onsite-tab-sensors-button": "chart",
    "#onsite-tab-orders-button": "wrench",
    "#onsite-tab-admin-button": "book",
    "#onsite-approve": "check", "#onsite-order-approve": "check",
    "#onsite-reject": "cross", "#onsite-order-reject": "cross",
    "#onsite-insp-run": "search",
    "#onsite-sensor-show": "chart",
    "#onsite-orders-refresh": "refresh",
    "#onsite-doc-save": "save",
    "#onsite-rebuild": "refresh",
    "#onsite-rollback": "undo",
    "#onsite-stop": "stop",
    "#onsite-new": "plus",
}


def icon_uri(name: str) -> str:
    svg = (ICONS / f"{name}.svg").read_text(encoding="utf-8").strip()
    return "data:image/svg+xml," + quote(svg, safe=" :/=")


def icon_css() -> str:
    rules = [f'{sel}::before {{ -webkit-mask-image: url("{icon_uri(name)}"); mask-image: url("{icon_uri(name)}"); }}'
             for sel, name in ICON_OF.items()]
    shared = ", ".join(f"{sel}::before" for sel in ICON_OF)
    return (f"{shared} {{ content: \"\"; display: inline-block; width: 1.1em; height: 1.1em; margin-right: .4em; "
            "flex: none; vertical-align: -0.15em; background-color: currentColor; -webkit-mask-repeat: no-repeat; "
            "mask-repeat: no-repeat; -webkit-mask-size: contain; mask-size: contain; }\n" + "\n".join(rules))


BASE = """
.gradio-container button { min-height: 52px; font-size: 1.1rem; }
.gradio-container input[type="text"], .gradio-container textarea { font-size: 1.1rem; }
#onsite-source-pick label { min-height: 44px; font-size: 1rem; }
#onsite-insp-verdict h2 { font-size: 2rem; }
"""

# Gradio rewrites the rules of ``css`` under its own container, which breaks the ones in a media
# query; these go into the page's <head> as they are.
RESPONSIVE = """
.gradio-container { font-size: 18px; }
.gradio-container button[role="tab"] { min-height: 48px; font-size: 1.15rem; padding: 0 1.1rem; white-space: nowrap; }
#onsite-chat .message { font-size: 1.1rem; line-height: 1.55; }

/* header: title, model badge, account, language; wraps into short rows, never squeezes a column */
#onsite-header { align-items: center; flex-wrap: wrap; gap: .4rem 1rem; overflow: visible; }
#onsite-header > * { min-width: 0 !important; flex: 0 1 auto !important; width: auto !important; }
#onsite-header > #onsite-title { flex: 1 1 auto !important; }
#onsite-title h2 { margin: 0 !important; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#onsite-lang .wrap { flex-wrap: nowrap; gap: .3rem; }
#onsite-lang label { white-space: nowrap; }
#onsite-account p { margin: 0; }

/* the one-line model badge; its details open below it, over the page */
#onsite-status { position: relative; overflow: visible; }
.onsite-badge { position: relative; font-size: 1rem; }
.onsite-badge > summary { list-style: none; cursor: pointer; white-space: nowrap; padding: .35rem .8rem;
  border-radius: 999px; border: 1px solid var(--border-color-primary); max-width: 70vw; overflow: hidden;
  text-overflow: ellipsis; min-height: 40px; box-sizing: border-box; display: flex; align-items: center; gap: .45rem; }
.onsite-badge > summary::-webkit-details-marker { display: none; }
.onsite-badge .onsite-badge-text { overflow: hidden; text-overflow: ellipsis; }
.onsite-badge .dot { width: .7em; height: .7em; border-radius: 50%; background: #16a34a; flex: none; }
.onsite-badge.extractive .dot, .onsite-badge.loading .dot { background: #d97706; }
.onsite-badge.noindex .dot { background: #dc2626; }
.onsite-badge-details { position: absolute; z-index: 60; top: calc(100% + .3rem); right: 0;
  width: min(36rem, calc(100vw - 24px)); max-height: 70vh; overflow: auto; padding: .8rem 1rem; border-radius: 10px;
  background: var(--background-fill-primary); border: 1px solid var(--border-color-primary);
  box-shadow: 0 6px 24px rgba(0,0,0,.15); font-size: .95rem; box-sizing: border-box; }
.onsite-badge-details p { margin: .3rem 0; overflow-wrap: anywhere; }
.onsite-badge-details pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; margin: .4rem 0 0; }

/* the alerts badge: the worst active severity's colour (ui/alerts_panel.py) */
.onsite-alerts-badge { display: inline-flex; align-items: center; gap: .45rem; padding: .35rem .8rem; min-height: 40px;
  box-sizing: border-box; border-radius: 999px; border: 1px solid var(--border-color-primary); white-space: nowrap; }
.onsite-alerts-badge .dot { width: .7em; height: .7em; border-radius: 50%; background: #16a34a; flex: none; }
.onsite-alerts-badge.info .dot { background: #2563eb; }
.onsite-alerts-badge.warning .dot { background: #d97706; }
.onsite-alerts-badge.alarm .dot, .onsite-alerts-badge.critical .dot { background: #dc2626; }
.onsite-alerts-badge.critical { background: #dc2626; color: #fff; font-weight: 600; }
.onsite-alerts-badge.critical .dot { background: #fff; }
.onsite-alerts-badge .n { display: none; }

/* the tab bar: Gradio moves the tabs that do not fit into its "..." menu; nothing may widen the page */
#onsite-tabs .tab-wrapper { max-width: 100%; }

/* the chat fills what the viewport leaves for it */
#onsite-chat { height: clamp(260px, calc(100dvh - 330px), 900px) !important; }
#onsite-chat-row { flex-wrap: wrap; }

@media (max-width: 900px) {
  .gradio-container > .main { padding: 10px 14px !important; }
  #onsite-chat-row > * { min-width: 100% !important; }   /* sources below the chat */
  .gradio-container button[role="tab"] { padding: 0 .8rem; }
  #onsite-chat { height: clamp(240px, calc(100dvh - 320px), 900px) !important; }
  .onsite-badge-details { position: fixed; top: 64px; left: 8px; right: 8px; width: auto; }
}
@media (max-width: 480px) {
  .gradio-container { font-size: 16px; }
  .gradio-container > .main { padding: 6px 8px !important; }
  #onsite-header { gap: .25rem .5rem; }
  #onsite-title h2 { font-size: 1.15rem !important; }
  #onsite-lang .block-title, #onsite-lang > span, #onsite-lang [data-testid="block-info"] { display: none; }
  #onsite-lang label { padding: .2rem .45rem; min-height: 40px; }
  #onsite-lang input[type="radio"] { display: none; }
  #onsite-lang label.selected { border-color: var(--color-accent); color: var(--color-accent); font-weight: 600; }
  #onsite-logout { min-height: 40px; padding: 0 .7rem; }
  .onsite-badge > summary { max-width: 52vw; padding: .25rem .6rem; }
  .onsite-alerts-badge { padding: .25rem .55rem; gap: .3rem; }
  .onsite-alerts-badge .n { display: inline; }
  .onsite-alerts-badge .word { display: none; }
  .gradio-container button[role="tab"] { font-size: 1rem; padding: 0 .6rem; min-height: 44px; }
  #onsite-chat { height: clamp(200px, calc(100dvh - 350px), 700px) !important; }
  #onsite-account { display: none !important; }  /* two header rows: the sign-out button says it */
  #onsite-chat .message { font-size: 1rem; }
  #onsite-input textarea::placeholder { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #onsite-chat label[data-testid="block-label"], #onsite-chat .block-label { display: none; }
}
"""

CSS = BASE + icon_css()
HEAD_STYLE = f"<style>{RESPONSIVE}</style>"
