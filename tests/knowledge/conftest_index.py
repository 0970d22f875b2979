"""Helpers for index tests: small real corpora written to disk."""

from __future__ import annotations

from pathlib import Path

from assistant.settings import Settings

PUMP = """---
kind: manual
title: Pump P-101 manual
asset: P-101
---
# Pump P-101 manual

## Maintenance

Grease the drive-end bearing every 2000 operating hours with 15 g of lithium grease.

## Faults

Cavitation sounds like gravel in the casing. Raise the suction pressure or reduce the flow.
"""

TOMATO = """---
kind: crop
title: 温室番茄栽培技术规程
crop: tomato
---
# 温室番茄栽培技术规程

## 开花坐果期

白天温度保持在22至26 °C，夜间温度不低于15 °C，相对湿度控制在60%至70%。

## 病害

灰霉病在高湿条件下发生，应加强通风，降低湿度。
"""

SAFETY = """---
kind: regulation
title: 厂区安全管理规定
---
# 厂区安全管理规定

## 第二章 上锁挂牌

第五条 设备检修前，作业人员应当切断全部能源，并在隔离点上锁挂牌。

第六条 进入有限空间作业前，应当检测氧含量，氧含量应在19.5%至23.5%之间。
"""


def write_corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "manuals").mkdir(parents=True, exist_ok=True)
    (docs / "crops").mkdir(parents=True, exist_ok=True)
    (docs / "regulations").mkdir(parents=True, exist_ok=True)
    (docs / "manuals" / "pump.md").write_text(PUMP, encoding="utf-8")
    (docs / "crops" / "tomato.md").write_text(TOMATO, encoding="utf-8")
    (docs / "regulations" / "safety.md").write_text(SAFETY, encoding="utf-8")
    return docs


def fake_settings(home: Path, **kw) -> Settings:
    return Settings(home=home, embedding={"model": "fake:64"}, **kw)
