"""The photo tab's "Teach a product" and "Send to review", with the real inspection and
work-order services: fit from uploaded good photos (threshold, references, their scores, the new
product in the dropdown), refusals as messages, a proposed work order carrying the verdict and the
annotated photo's id; non-admins cannot teach when signed in."""

from __future__ import annotations

import pytest

from tools.inspection.service import InspectionService
from tools.inspection.synthetic import generate
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore
from tools.workorders.service import WorkOrderService
from tools.workorders.store import WorkOrderStore
from ui.i18n import t
from ui.tab_inspect import InspectHandlers


@pytest.fixture(scope="module")
def metal(tmp_path_factory):
    root = tmp_path_factory.mktemp("metal")
    generate(root, products=("metal",), size=128, seed=5, n_reference=4, n_good=1, n_defective_per_type=1)
    return root / "metal" / "images"


@pytest.fixture
def page(tmp_path, metal):
    root = tmp_path / "gradio"  # the page's upload folder: only files in it are accepted
    root.mkdir()
    for p in metal.glob("*.png"):
        (root / p.name).write_bytes(p.read_bytes())
    inspection = InspectionService(UploadStore(tmp_path / "uploads"), ProductStore(tmp_path / "inspection"))
    orders = WorkOrderService(WorkOrderStore(tmp_path / "orders.db"), {"P-101"})
    return InspectHandlers(inspection, upload_root=root, work_orders=orders, assets=["P-101"]), root


class DeniedAuth:
    required = True

    def access(self, request, role="operator"):
        from ui.login import Access

        return Access(role != "admin", None, "" if role != "admin" else "auth.admin_only")

    def allows(self, request, role="operator"):
        return role != "admin"

    def principal(self, request):
        return None


def test_teach_then_inspect_then_send_to_review(page):
    h, root = page
    refs = [str(p) for p in sorted(root.glob("ref_*.png"))]
    report, dropdown = h.teach("metal", refs, "en")
    assert report.startswith("**metal** learned from 4 photos. Threshold **") and "The good photos score" in report
    assert dropdown["choices"] == ["metal"] and dropdown["value"] == "metal"
    defective = sorted(p for p in root.glob("*.png") if not p.name.startswith(("ref_", "good_")))[0]
    image, md, result, review, msg = h.inspect_for_review(str(defective), "metal", "en")
    assert image is not None and md.startswith("## ") and review["visible"] is True
    sent = h.send_review(result, "P-101", "en")
    assert sent.startswith("Work order **") and "waiting for approval" in sent
    order = h.work_orders.list_work_orders()[0]
    assert order["status"] == "pending" and order["asset"] == "P-101"
    assert f"score {result['score']:.3f} vs threshold {result['threshold']:.3f}" in order["problem"]
    assert any(result["annotated_image_id"] in e for e in order["evidence"])


def test_teach_a_golden_view_from_one_photo(page):
    h, root = page
    one = [str(sorted(root.glob("ref_*.png"))[0])]
    assert "3 to 200 photos" in h.teach("plate", one, "en")[0]  # a learned product needs more
    report, dropdown = h.teach("plate", one, "en", True)
    assert report.startswith("**plate** learned from 1 photos") and dropdown["value"] == "plate"
    assert h.inspection.describe_product("plate")["kind"] == "golden"


def test_teach_refusals_are_messages_and_change_nothing(page):
    h, root = page
    refs = [str(p) for p in sorted(root.glob("ref_*.png"))]
    assert h.teach("", refs, "en")[0] == t("en", "teach.need_name")
    assert "3 to 200 photos" in h.teach("metal", refs[:2], "en")[0]
    bad = root / "broken.png"
    bad.write_bytes(b"not a photo")
    assert "(broken.png) was refused" in h.teach("metal", refs + [str(bad)], "zh")[0]
    assert h.teach("metal", [str(root / ".." / "outside.png")], "en")[0].startswith("Error: ")
    assert h.products() == []
    assert h.send_review(None, "P-101", "en") == t("en", "review.need_result")


def test_only_admins_teach_when_signed_in(page):
    h, root = page
    h.auth = DeniedAuth()
    refs = [str(p) for p in sorted(root.glob("ref_*.png"))]
    assert h.teach("metal", refs, "en")[0] == t("en", "auth.admin_only") and h.products() == []
    assert h.refresh_all("en")[2]["visible"] is False
