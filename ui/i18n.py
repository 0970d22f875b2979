"""The page's words in English and Chinese, and which language a visitor gets.

The language is a setting on the page (Auto / 中文 / English, remembered in the browser); Auto
follows the browser (the ``Accept-Language`` header). Labels are swapped on the server side
(``Labels``), so the labels and everything the page writes (steps, badges, sources, reports)
are always in the same language.
"""

from __future__ import annotations

import re
from typing import Any

LANGS = ("en", "zh")
LANG_CHOICES = [("Auto", "auto"), ("中文", "zh"), ("English", "en")]

# key: (English, Chinese)
TEXT: dict[str, tuple[str, str]] = {
    "app.title": ("onsite · plant assistant", "onsite · 现场助手"),
    "lang": ("Language / 语言", "语言 / Language"),
    "status.llm": ("Language model: {name}", "语言模型：{name}"),
    "status.extractive": ("No language model: answers are extracts from the documents ({reason})",
                          "未加载语言模型：回答为文档摘录（{reason}）"),
    "status.index": ("Knowledge index: {version}", "知识库版本：{version}"),
    "status.noindex": ("No knowledge index yet: add documents under Documents", "尚无知识库：请在“文档”页添加文档"),
    # tabs
    "tab.chat": ("Ask", "问答"),
    "tab.inspect": ("Photo check", "拍照检测"),
    "tab.sensors": ("Sensors", "传感器"),
    "tab.orders": ("Work orders", "工单"),
    "tab.alerts": ("Alerts", "告警"),
    "tab.admin": ("Documents", "文档"),
    # chat
    "chat.label": ("Conversation", "对话"),
    "chat.input": ("Ask about procedures, limits, equipment, sensors… or attach a photo",
                   "询问规程、限值、设备、传感器……也可附上照片"),
    "chat.send": ("Send", "发送"),
    "chat.stop": ("Stop", "停止"),
    "chat.new": ("New conversation", "新对话"),
    "chat.stopped": ("Stopped.", "已停止。"),
    "chat.zone": ("Zone", "区域"),
    "chat.asset": ("Equipment", "设备"),
    "scope.any": ("Whole site", "全厂"),
    "chat.photo": ("Photo", "照片"),
    "approval.title": ("### Waiting for a decision", "### 等待审批"),
    "approval.item": ("**{tool}** — {what}", "**{tool}** — {what}"),
    "approval.by": ("Your name", "审批人"),
    "approval.reason": ("Reason", "理由"),
    "approve": ("Approve", "批准"),
    "reject": ("Reject", "驳回"),
    "approval.need_name": ("Enter your name before deciding.", "请先填写审批人姓名。"),
    "approval.need_reason": ("Give a reason for the rejection.", "驳回需要填写理由。"),
    "approval.default_reason": ("approved on the chat page", "在问答页批准"),
    # steps in the chat
    "step.contextualize": ("Understanding the follow-up", "理解追问"),
    "step.route": ("Planning", "规划"),
    "step.retrieve": ("Searching the documents", "检索文档"),
    "step.working": ("Working", "处理中"),
    "step.tool": ("Tool · {call}", "工具 · {call}"),
    "step.failed": ("failed", "失败"),
    "step.revised": ("Draft replaced", "草稿已替换"),
    "step.checks": ("Checks", "校验"),
    "step.approved": ("approved by {by}", "已由 {by} 批准"),
    "step.rejected": ("rejected by {by}", "已被 {by} 驳回"),
    # answer badges
    "badge.extractive": ("**Extract from the documents** (no language model{reason})", "**文档摘录**（未使用语言模型{reason}）"),
    "badge.abstained": ("**Not answered** — the documents do not support an answer",
                        "**未回答**：文档中没有足够依据"),
    "badge.partial": ("**Partial answer** — some steps failed", "**部分回答**：部分步骤失败"),
    "badge.pending": ("**Waiting for approval** — see below the conversation", "**等待审批**：请在对话下方审批"),
    "err.busy": ("The assistant is busy with other questions; try again in {s:.0f} s.",
                 "助手正忙，请 {s:.0f} 秒后重试。"),
    "err.failed": ("Error: {msg}", "出错：{msg}"),
    "err.empty": ("Type a question first.", "请先输入问题。"),
    # sources
    "sources.title": ("### Sources", "### 来源"),
    "sources.none": ("_Sources appear here after an answer._", "_回答后在此显示来源。_"),
    "sources.open": ("Open a source", "查看来源"),
    "sources.page": ("p. {page}", "第 {page} 页"),
    "sources.cited": ("cited", "已引用"),
    "sources.tool": ("live data", "实时数据"),
    "sources.flag": ("Caution: contains instruction-like text; used as data only", "注意：含类似指令的文字，仅作为资料使用"),
    "sources.page_image": ("Page", "页面"),
    # inspection
    "insp.photo": ("Photo (camera or file)", "照片（拍照或选择文件）"),
    "insp.product": ("Product", "产品"),
    "insp.run": ("Inspect", "检测"),
    "insp.result": ("Annotated result", "标注结果"),
    "insp.good": ("## GOOD\nscore {score:.2f} (threshold {threshold:.2f})",
                  "## 合格\n得分 {score:.2f}（阈值 {threshold:.2f}）"),
    "insp.bad": ("## DEFECTIVE\nscore {score:.2f} (threshold {threshold:.2f}), {n} defect region(s)",
                 "## 不合格\n得分 {score:.2f}（阈值 {threshold:.2f}），{n} 处缺陷"),
    "insp.defect": ("- {cls} at ({x0}, {y0})–({x1}, {y1}), score {score:.2f}",
                    "- {cls}：({x0}, {y0})–({x1}, {y1})，得分 {score:.2f}"),
    "insp.need_photo": ("Take or choose a photo first.", "请先拍照或选择照片。"),
    "insp.no_products": ("No product has been learned yet. Teach one below (**Teach a product**: a name and 3 or "
                         "more photos of good items, then Fit), or with `onsite inspect fit NAME PHOTOS…` or "
                         "`POST /api/v1/products`. The sample product **{product}** comes back with "
                         "`python -m tools.inspection.sample_product {folder}` (or a restart with no product).",
                         "尚未学习任何产品。请在下方“教会一个产品”中输入名称、上传 3 张以上合格品照片并点“学习”，"
                         "或使用 `onsite inspect fit 名称 照片…`、`POST /api/v1/products`。运行 "
                         "`python -m tools.inspection.sample_product {folder}`（或在没有产品时重启服务器）可恢复示例产品 **{product}**。"),
    # sensors
    "sens.sensor": ("Sensor", "传感器"),
    "sens.window": ("Window", "时间范围"),
    "sens.show": ("Show", "显示"),
    "sens.plot": ("Readings", "读数"),
    "sens.value": ("value", "读数"),
    "sens.low": ("low limit", "下限"),
    "sens.high": ("high limit", "上限"),
    "sens.alarm_low": ("alarm low", "报警下限"),
    "sens.alarm_high": ("alarm high", "报警上限"),
    "sens.trip_low": ("trip low", "停机下限"),
    "sens.trip_high": ("trip high", "停机上限"),
    "sens.series": ("line", "曲线"),
    "sens.time": ("time", "时间"),
    "period.day": ("day", "白天"),
    "period.night": ("night", "夜间"),
    "sens.summary": ("**{name}** ({sensor}) · latest **{value} {unit}** at {ts} · {status} · {n} points",
                     "**{name}**（{sensor}）· 最新 **{value} {unit}**（{ts}）· {status} · {n} 个点"),
    "sens.nodata": ("No readings of {sensor} in this window.", "{sensor} 在此时间范围内没有读数。"),
    "sens.limits": ("Limits: {text} (source: {source})", "限值：{text}（来源：{source}）"),
    "win.1h": ("1 hour", "1 小时"),
    "win.6h": ("6 hours", "6 小时"),
    "win.24h": ("24 hours", "24 小时"),
    "win.7d": ("7 days", "7 天"),
    # work orders
    "orders.title": ("Pending work orders", "待审批工单"),
    "orders.refresh": ("Refresh", "刷新"),
    "orders.pick": ("Work order", "工单"),
    "orders.by": ("Supervisor", "主管"),
    "orders.reason": ("Reason", "理由"),
    "orders.none": ("_No work orders are waiting for a decision._", "_没有待审批的工单。_"),
    "orders.decided": ("Work order {id} is now **{status}** ({by}).", "工单 {id} 状态：**{status}**（{by}）。"),
    "orders.need_pick": ("Choose a work order first.", "请先选择工单。"),
    "col.id": ("ID", "编号"),
    "col.asset": ("Equipment", "设备"),
    "col.priority": ("Priority", "优先级"),
    "col.problem": ("Problem", "问题"),
    "col.requested_by": ("Requested by", "申请人"),
    "col.created": ("Created", "创建时间"),
    # admin
    "admin.files": ("Documents to add (PDF, Word, Markdown, HTML, text)", "要添加的文档（PDF、Word、Markdown、HTML、文本）"),
    "admin.save": ("Save documents", "保存文档"),
    "admin.rebuild": ("Rebuild the index", "重建索引"),
    "admin.rollback": ("Roll back to the previous version", "回滚到上一版本"),
    "admin.saved": ("Saved {n} file(s): {names}. Rebuild the index to use them.", "已保存 {n} 个文件：{names}。重建索引后生效。"),
    "admin.refused": ("Refused {name}: {reason}", "未接受 {name}：{reason}"),
    "admin.nofiles": ("Choose files first.", "请先选择文件。"),
    "admin.progress": ("Rebuilding: {stage} {done}/{total}", "重建中：{stage} {done}/{total}"),
    "admin.done": ("Index **{version}** is live.", "知识库 **{version}** 已生效。"),
    "admin.failed": ("The rebuild failed: {reason}", "重建失败：{reason}"),
    "admin.rolled": ("Rolled back: **{version}** is live.", "已回滚：**{version}** 已生效。"),
    "admin.report": ("Per-file report", "逐文件报告"),
    "col.file": ("File", "文件"),
    "col.result": ("Result", "结果"),
    "col.chunks": ("Chunks", "片段"),
    "col.pages": ("Pages", "页数"),
    "col.detail": ("Detail", "说明"),
    "file.ok": ("indexed", "已索引"),
    "file.failed": ("skipped", "已跳过"),
    # sign-in (the login page and who is signed in on the page)
    "login.title": ("Sign in · onsite", "登录 · onsite"),
    "login.heading": ("Sign in to the plant assistant", "登录现场助手"),
    "login.intro": ("Enter the access key you were given.", "请输入分配给您的访问密钥。"),
    "login.key": ("Access key", "访问密钥"),
    "login.submit": ("Sign in", "登录"),
    "login.hint": ("No key? Ask the person who runs this server (keys are set in ONSITE_API_KEYS).",
                   "没有密钥？请联系本服务器的管理员（密钥在 ONSITE_API_KEYS 中设置）。"),
    "login.bad_key": ("That key is not valid.", "密钥无效。"),
    "login.cross_site": ("Sign in from this server's own page.", "请在本服务器的页面上登录。"),
    "login.busy": ("Too many attempts; wait a minute and try again.", "尝试次数过多，请稍后再试。"),
    "login.signed_out": ("You are signed out.", "您已退出登录。"),
    "auth.as": ("Signed in as **{name}** ({role})", "已登录：**{name}**（{role}）"),
    "auth.logout": ("Sign out", "退出登录"),
    "auth.admin_only": ("Only an administrator can do this.", "只有管理员可以执行此操作。"),
    "auth.signed_out": ("Your sign-in has ended: reload the page and sign in again.", "登录已失效：请刷新页面并重新登录。"),
    "role.admin": ("administrator", "管理员"),
    "role.operator": ("operator", "操作员"),
    "orders.admin_only": ("_Only an administrator can approve or reject work orders._", "_只有管理员可以批准或驳回工单。_"),
    # --- helper D (issue 14): photo samples, sensor status words, sensor summary lines, tables ---
    "insp.examples": ("Sample photos: click one, then Inspect", "示例照片：点击一张，再点“检测”"),
    "insp.sample.good": ("good label", "合格标签"),
    "insp.sample.spot": ("label with a stain", "有污渍的标签"),
    "insp.sample.missing": ("label with a piece missing", "缺角的标签"),
    "insp.cls.anomaly": ("anomaly", "异常区域"),
    "insp.sample_note": ("_**{product}** is a sample product (a printed label learned from synthetic photos), so this "
                         "tab can be tried at once: click a sample photo, then Inspect. Teach your own product "
                         "below (**Teach a product**)._",
                         "_**{product}** 是示例产品（由合成照片学习的印刷标签），可立即试用本页：点击一张示例照片，"
                         "再点“检测”。在下方“教会一个产品”中教会您自己的产品。_"),
    # --- helper B (issue 15): teach a product, send a result to review ---
    "teach.title": ("Teach a product", "教会一个产品"),
    "teach.howto": ("Name the product and upload **3–200 photos of good items** (5–20 recommended): the same "
                    "camera, view and size as the photos you will check. **Fit** learns what good looks like and "
                    "chooses the threshold from the photos' own scores. Administrators only when signed in.",
                    "输入产品名称，上传 **3–200 张合格品照片**（建议 5–20 张），与以后要检测的照片同一相机、同一视角、"
                    "同一尺寸。点“学习”后系统学习合格品的样子，并根据这些照片自身的得分选定阈值。登录时仅管理员可用。"),
    "teach.name": ("Product name", "产品名称"),
    "teach.name_hint": ("e.g. pump-cover (letters, digits, - and _)", "例如 pump-cover（字母、数字、- 和 _）"),
    "teach.files": ("Photos of good items", "合格品照片"),
    "teach.golden": ("Golden images of one fixed camera view (1–20 photos; each new photo is aligned and compared "
                     "with them)", "固定相机视角的标准图（1–20 张；每张新照片对齐后与其逐点比对）"),
    "teach.fit": ("Fit", "学习"),
    "teach.need_name": ("Give the product a name first.", "请先输入产品名称。"),
    "teach.done": ("**{name}** learned from {n} photos. Threshold **{threshold:.3f}**: a photo scoring above it "
                   "is flagged defective.",
                   "已从 {n} 张照片学会 **{name}**。阈值 **{threshold:.3f}**：得分高于阈值的照片判为不合格。"),
    "teach.scores": ("The good photos score {low:.2f}–{high:.2f} (each against the others): {scores}",
                     "合格照片得分 {low:.2f}–{high:.2f}（每张与其余照片比较）：{scores}"),
    "review.asset": ("Equipment for the work order", "工单对应设备"),
    "review.send": ("Send to review", "提交审核"),
    "review.need_result": ("Inspect a photo first.", "请先检测一张照片。"),
    "review.need_asset": ("Choose the equipment first.", "请先选择设备。"),
    "review.sent": ("Work order **{id}** proposed, waiting for approval (Work orders tab).",
                    "已提交工单 **{id}**，等待批准（见“工单”页）。"),
    "sstatus.normal": ("normal", "正常"),
    "sstatus.warning": ("warning", "预警"),
    "sstatus.alarm": ("alarm", "报警"),
    "sstatus.trip": ("trip", "联锁停机"),
    "sstatus.emergency": ("emergency", "紧急"),
    "sstatus.no_data": ("no data", "无数据"),
    "sstatus.bad_quality": ("bad quality", "数据质量差"),
    "sstatus.stopped": ("equipment stopped", "设备已停机"),
    "sstatus.no_limits": ("no limits set", "未设限值"),
    "sstatus.stale": ("stale", "数据过时"),
    "sdir.high": ("high", "偏高"),
    "sdir.low": ("low", "偏低"),
    "sum.one_ok": ("{label}: the reading is within limits (taken {age})", "{label}：读数在正常范围内（{age}读取）"),
    "sum.all_ok": ("{label}: all {n} readings within limits (oldest taken {age})",
                   "{label}：全部 {n} 个读数在正常范围内（最早的读数于 {age}读取）"),
    "sum.all_ok_now": ("{label}: all {n} readings within limits (all taken just now)",
                       "{label}：全部 {n} 个读数在正常范围内（均为刚刚读取）"),
    "sum.flagged": ("{label}: {n} sensors, {k} to look at", "{label}：{n} 个传感器，{k} 项需要关注"),
    "sum.just_now": ("just now", "刚刚"),
    "sum.min_ago": ("{m} min ago", "{m} 分钟前"),
    "sum.h_ago": ("{h} h ago", "{h} 小时前"),
    "sum.stale": ("{sensor} stale (last reading {age})", "{sensor} 数据过时（最后读数于 {age}）"),
    "sum.no_data": ("{sensor} no data", "{sensor} 无数据"),
    "sum.stopped": ("{assets} stopped (its readings are not judged)", "{assets} 已停机（其读数不作判断）"),
    "sum.band": ("(normal {lo}–{hi}, {period})", "（正常 {lo}–{hi}，{period}）"),
    "sum.beyond": ("{status} ({side} {bound}, {period})", "{status}（{side} {bound}，{period}）"),
    "sum.above": ("above", "高于"),
    "sum.below": ("below", "低于"),
    "col.none": ("—", "—"),
    # the header's model badge and its details; the chat's scope pickers; the login page's switch
    "badge.extractive_short": ("Extracts only", "仅摘录"),
    "badge.llm_short": ("{name}", "{name}"),
    "badge.loading": ("Loading the model…", "正在加载模型…"),
    "badge.noindex": ("No knowledge index", "尚无知识库"),
    "status.why": ("Why: {reason}", "原因：{reason}"),
    "status.admin": ("For the administrator — how to load a language model:", "管理员：如何加载语言模型："),
    "chat.scope": ("Zone and equipment", "区域与设备"),
    "login.switch": ("中文", "English"),
    # alerts: the header badge and the folded list under it (ui/alerts_panel.py)
    "alerts.title": ("Alerts", "告警"),
    "alerts.badge": ("{n} alerts", "{n} 条告警"),
    "alerts.badge_none": ("No alerts", "无告警"),
    "alerts.pick": ("Alert", "告警"),
    "alerts.ack": ("Acknowledge", "确认"),
    "alerts.close": ("Close (admin)", "关闭（管理员）"),
    "alerts.note": ("Note (what was done)", "备注（处理情况）"),
    "alerts.need_pick": ("Pick an alert first.", "请先选择一条告警。"),
    "alerts.done.acknowledged": ("Alert #{id} acknowledged by {by}.", "告警 #{id} 已由 {by} 确认。"),
    "alerts.done.closed": ("Alert #{id} closed by {by}.", "告警 #{id} 已由 {by} 关闭。"),
    "alerts.state.open": ("open", "未处理"),
    "alerts.state.acknowledged": ("acknowledged", "已确认"),
    "alerts.state.closed": ("closed", "已关闭"),
    "alerts.col.id": ("#", "#"),
    "alerts.col.severity": ("Severity", "级别"),
    "alerts.col.state": ("State", "状态"),
    "alerts.col.target": ("Equipment / zone", "设备/区域"),
    "alerts.col.title": ("What", "内容"),
    "alerts.col.last_seen": ("Last seen", "最近出现"),
    "alerts.col.count": ("Times", "次数"),
    "sev.info": ("info", "提示"),
    "sev.warning": ("warning", "警告"),
    "sev.alarm": ("alarm", "报警"),
    "sev.critical": ("critical", "严重"),
}


def t(lang: str, key: str, **kw: Any) -> str:
    """The text for ``key`` in ``lang`` (English when unknown), formatted with ``kw``."""
    en, zh = TEXT.get(key, (key, key))
    text = zh if lang == "zh" else en
    return text.format(**kw) if kw else text


def pick_lang(setting: str | None, accept_language: str | None = None) -> str:
    """``zh`` or ``en``: the explicit setting, else the first of the browser's languages we know."""
    if setting in LANGS:
        return setting  # type: ignore[return-value]
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        base = tag.split("-")[0]
        if base in LANGS:
            return base
    return "en"


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def question_lang(text: str | None) -> str | None:
    """The language a question is written in, for the page on Auto: ``zh`` when it is mostly Chinese
    (a Han character weighs about as much as two Latin letters: "P-101 的压力上限是多少" is Chinese),
    ``en`` when it has Latin letters, None when it has neither (a photo, digits)."""
    han, latin = len(_HAN.findall(text or "")), len(_LATIN.findall(text or ""))
    if han == 0 and latin == 0:
        return None
    return "zh" if han * 2 >= latin else "en"


class Labels:
    """Components whose words follow the language: bind each (component, attribute, key), then
    ``updates(lang)`` returns one ``gr.update`` per bound component, in ``components`` order."""

    def __init__(self) -> None:
        self._bound: list[tuple[Any, dict[str, Any]]] = []

    def bind(self, component: Any, **attrs: Any) -> Any:
        """``attrs`` maps an attribute (label, placeholder, value, info, choices …) to a text key,
        or to a function of the language that returns the attribute's value."""
        self._bound.append((component, dict(attrs)))
        return component

    @property
    def components(self) -> list[Any]:
        return [c for c, _ in self._bound]

    def values(self, lang: str) -> list[dict[str, str]]:
        return [{attr: key(lang) if callable(key) else t(lang, key) for attr, key in attrs.items()}
                for _, attrs in self._bound]

    def updates(self, lang: str) -> list[Any]:
        import gradio as gr

        return [gr.update(**v) for v in self.values(lang)]
