"""Child process that renders one PDF page to PNG on stdout (started by ``ui.sources_panel``).

    python -m ui.pdf_page FILE PAGE [--dpi 110] [--mem-mb 768] [--cpu-s 15]

PAGE is 1-based. The process limits its own address space and CPU time first; the parent also
kills it on a wall-clock timeout. Exit status 2: no such page; 1: the file cannot be rendered.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys

MAX_SIDE_PX = 2000


def _limit(which: int, value: int) -> None:
    hard = resource.getrlimit(which)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ui.pdf_page")
    parser.add_argument("file")
    parser.add_argument("page", type=int)
    parser.add_argument("--dpi", type=int, default=110)
    parser.add_argument("--mem-mb", type=int, default=768)
    parser.add_argument("--cpu-s", type=int, default=15)
    args = parser.parse_args(argv)
    _limit(resource.RLIMIT_AS, args.mem_mb * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, args.cpu_s)
    _limit(resource.RLIMIT_CORE, 0)

    import pypdfium2 as pdfium

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the PNG
    try:
        document = pdfium.PdfDocument(args.file)
    except pdfium.PdfiumError as exc:
        print(f"cannot open: {exc}", file=sys.stderr)
        return 1
    try:
        if not 1 <= args.page <= len(document):
            print(f"no page {args.page} (the file has {len(document)})", file=sys.stderr)
            return 2
        page = document[args.page - 1]
        width, height = page.get_size()
        scale = min(max(args.dpi, 36) / 72.0, MAX_SIDE_PX / max(width, height, 1.0))
        bitmap = page.render(scale=scale)
        image = bitmap.to_pil().convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=False)
        out.write(buf.getvalue())
        out.flush()
        return 0
    finally:
        document.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
