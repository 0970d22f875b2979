"""The fixed words of the daily advice, in Chinese and English: what to search the crop guide for
per finding (and which sections answer it), the template sentences with the day's numbers, and the
prompt that lets a model rewrite the template. Documents are data; these are the only phrases."""

from __future__ import annotations

from typing import Any

# (metric, direction, period or "*") → (English query, Chinese query, sections that answer it, best first)
TOPICS: dict[tuple[str, str, str], tuple[str, str, tuple[str, ...]]] = {
    ("air_temperature", "low", "night"): ("night temperature below the limit heating failure response vents screen",
                                          "夜温低于限值 加温故障 处置 通风窗 保温幕", ("5.3", "5.2")),
    ("air_temperature", "low", "*"): ("heating pipe-rail temperature morning temperature rise setpoint",
                                      "加温 管道 温度 早晨 升温 设定", ("5.2", "5.3")),
    ("air_temperature", "high", "*"): ("high temperature vents fully open shade screen fogging",
                                       "高温处置 通风窗 全开 遮阳 喷雾", ("5.4", "5.1")),
    ("relative_humidity", "high", "*"): ("humidity control: when RH is above 85 % open the leeward vents 5–10 % and "
                                         "keep a minimum pipe temperature of 40 °C, screen gap",
                                         "除湿：相对湿度高于85%时 背风侧窗开启5%–10% 保持最低管温40 °C 保温幕缝隙", ("5.1",)),
    ("relative_humidity", "low", "*"): ("relative humidity low fogging on check vents and screens",
                                        "相对湿度 偏低 开启喷雾 检查通风窗和幕布", ("2.3", "5.4")),
    ("co2", "low", "*"): ("dose CO2 only in daylight to 800–1000 ppm with vents open 10 % or less, 400–450 ppm with "
                          "vents open more", "只在白天增施CO2 通风窗开度不大于10%时补充至800–1000 ppm 开度更大时400–450 ppm",
                          ("5.5", "2.2")),
    ("co2", "high", "*"): ("CO2 dosing stops 1500 ppm valve check ventilate", "CO2 1500 ppm 停止增施 检查阀门", ("5.5",)),
    ("dli", "low", "*"): ("DLI below mol/m²/d lower the 24-hour mean temperature assimilates",
                          "DLI低于 24小时平均温度 同化物", ("2.2",)),
    ("dli", "high", "*"): ("high radiation shade screen fogging", "强光 遮阳 喷雾", ("5.4",)),
    ("substrate_moisture", "low", "*"): ("slab water content low irrigation shot frequency radiation",
                                         "基质含水量 低 灌溉 次数 辐射", ("4.2", "2.3")),
    ("substrate_moisture", "high", "*"): ("slab water content high irrigation program night dry-back last irrigation",
                                          "基质含水量 高 灌溉程序 夜间 含水量下降 最后一次灌溉", ("4.2", "2.3")),
    ("substrate_ec", "high", "*"): ("slab EC above feed EC add irrigation shots raise drain fraction lower feed EC",
                                    "基质EC 高于供液EC 增加灌溉 回液率 降低供液EC", ("4.3",)),
    ("substrate_ec", "low", "*"): ("slab EC feed EC stage targets stock dosing rate",
                                   "基质EC 供液EC 阶段指标 母液 配比", ("4.3", "2.3")),
    ("feed_ec", "*", "*"): ("feed EC stage targets stock dosing rate hand meter", "供液EC 阶段指标 母液 配比 手持仪",
                            ("4.3",)),
    ("feed_ph", "*", "*"): ("feed pH slab pH ammonium correction", "供液pH 基质pH 铵 调整", ("4.3",)),
}

METRIC = {
    "en": {"air_temperature": "air temperature", "relative_humidity": "relative humidity", "co2": "CO2",
           "dli": "daily light sum (DLI)", "substrate_moisture": "slab water content", "substrate_ec": "slab EC",
           "feed_ec": "feed EC", "feed_ph": "feed pH", "par": "light (PPFD)"},
    "zh": {"air_temperature": "气温", "relative_humidity": "相对湿度", "co2": "CO2浓度", "dli": "日累计光照（DLI）",
           "substrate_moisture": "基质含水量", "substrate_ec": "基质EC", "feed_ec": "供液EC", "feed_ph": "供液pH",
           "par": "光照（PPFD）"},
}
PERIOD = {"en": {"day": "Day", "night": "Night", "all": "All-day", "daily": "Daily"},
          "zh": {"day": "白天", "night": "夜间", "all": "全天", "daily": "全天累计"}}
STAGE = {"zh": {"seedling": "育苗期", "establishment": "定植缓苗期", "flowering": "开花坐果期", "fruiting": "结果采收期"}}
CROP = {"zh": {"tomato": "番茄"}}

WORDS = {
    "en": {
        "intro": "Daily advice for {zone} ({name}) — {crop}, {stage} stage — for {date}, from the readings of "
                 "{day} (site time, day {d0}–{d1}).",
        "label_extractive": "Extract mode: a fixed template with quoted passages from the crop guide; no language "
                            "model wrote it.",
        "label_fallback": "Template shown: {why}.",
        "label_llm": "Written by the language model from the template; its source markers were checked.",
        "why_failed": "the model failed ({error})", "why_lost": "the model's text lost {markers}",
        "why_extra": "the model's text cited {markers}, which do not exist", "why_empty": "the model's text was empty",
        "low": "below", "high": "above",
        "finding": "{period} {metric} was {dir} the target {band} for {dur} ({worst_word} {worst}, {beyond} {dir} "
                   "the band; {period_l} mean {mean}).",
        "finding_daily": "{metric} was {value}, {dir} the target {band} by {beyond}.",
        "alarm": " Beyond the alarm level for {dur}.",
        "lowest": "lowest", "highest": "highest",
        "targets": "Targets: {source}.",
        "incomplete": " (readings cover only part of the day)",
        "today": "Today:",
        "no_passage": "Today: the crop guide has no passage on this; check it with the grower.",
        "in_range": "Everything measured was within the {stage} targets on {day}: no change needed today.",
        "no_data": "No readings from {zone} on {day}: no advice can be given. Check the sensors and the data feed.",
        "light": "Light sum {dli} mol/m²/d ({how}).",
        "drain": "Drain fraction: {note}.",
        "drain_value": "Drain fraction {value} % ({sensor}).",
        "sources": "Sources:",
        "headline_off": "{zone} {day}: {n} off — {first}",
        "headline_ok": "{zone} {day}: all within targets",
        "headline_none": "{zone} {day}: no readings",
        "first": "{period_l} {metric} too {dirw}",
        "dirw": {"low": "low", "high": "high"},
        "none": "not measured",
    },
    "zh": {
        "intro": "{zone}（{name}）每日建议 — {crop}，{stage} — {date}，依据{day}的数据（现场时间，白天{d0}–{d1}）。",
        "label_extractive": "摘录模式：固定模板加作物规程原文摘录，非语言模型生成。",
        "label_fallback": "显示模板：{why}。",
        "label_llm": "由语言模型依据模板改写；来源标记已核对。",
        "why_failed": "模型改写失败（{error}）", "why_lost": "模型改写丢失了来源标记{markers}",
        "why_extra": "模型改写引用了不存在的来源{markers}", "why_empty": "模型改写为空",
        "low": "低于", "high": "高于",
        "finding": "{period}{metric}{dir}目标{band}共{dur}（{worst_word}{worst}，{dir}范围{beyond}；{period}平均{mean}）。",
        "finding_daily": "{metric}为{value}，{dir}目标{band}，相差{beyond}。",
        "alarm": "超出报警值共{dur}。",
        "lowest": "最低", "highest": "最高",
        "targets": "指标来源：{source}。",
        "incomplete": "（数据只覆盖一天的一部分）",
        "today": "今日建议：",
        "no_passage": "今日建议：作物规程中没有相关内容，请与种植负责人确认。",
        "in_range": "{day}所有测量值均在{stage}指标范围内：今天无需调整。",
        "no_data": "{day}没有{zone}的数据，无法给出建议。请检查传感器和数据接入。",
        "light": "日累计光照{dli} mol/m²/d（{how}）。",
        "drain": "回液率：{note}。",
        "drain_value": "回液率{value} %（{sensor}）。",
        "sources": "来源：",
        "headline_off": "{zone} {day}：{n}项偏离 — {first}",
        "headline_ok": "{zone} {day}：全部在指标内",
        "headline_none": "{zone} {day}：无数据",
        "first": "{period}{metric}{dirw}",
        "dirw": {"low": "偏低", "high": "偏高"},
        "none": "未测量",
    },
}
DRAIN_NOTE = {"zh": {"not measured: no drain sensors in the site profile": "未测量（现场配置中没有回液传感器）"}}

REWRITE_SYSTEM = {
    "en": "You rewrite a greenhouse's daily advice for the growers: short, plain, in English. Keep every number "
          "and every source marker such as [1] exactly as written, next to the statement it supports. Add nothing "
          "that is not in the text.",
    "zh": "你把温室的每日建议改写给种植人员看：简短、直白、用中文。所有数字和来源标记（如[1]）必须原样保留，"
          "放在它所支持的内容后面。不要添加原文没有的内容。",
}


def topic(metric: str, direction: str, period: str) -> tuple[str, str, tuple[str, ...]] | None:
    for key in ((metric, direction, period), (metric, direction, "*"), (metric, "*", "*")):
        if key in TOPICS:
            return TOPICS[key]
    return None


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")  # 16 °C, not 16.0 °C
    return f"{text} {unit}".strip() if unit and unit != "pH" else text


def band(b: Any, unit: str) -> str:
    low, high = b
    if low is not None and high is not None:
        return fmt(low) + "–" + fmt(high, unit)
    return ("≥ " + fmt(low, unit)) if low is not None else ("≤ " + fmt(high, unit))


def duration(minutes: float, lang: str) -> str:
    if minutes < 60:
        return f"{minutes:.0f} min" if lang == "en" else f"{minutes:.0f}分钟"
    return f"{minutes / 60:.1f} h" if lang == "en" else f"{minutes / 60:.1f}小时"
