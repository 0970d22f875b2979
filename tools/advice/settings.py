"""``[advice]`` settings: when the daily advice is made, for which zones, in which language.
Plain pydantic, nothing heavy (the settings tree loads without numpy)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Lang = Literal["zh", "en"]


class AdviceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Make the daily advice (onsite serve's scheduler).")
    hour: int = Field(6, ge=0, le=23, description="Site local hour at or after which a day's advice is made "
                      "(from the previous day's readings).")
    zones: list[str] | None = Field(None, description="Zone ids to advise (default: every greenhouse / "
                                    "propagation zone of the site profile).")
    lang: Lang = Field("zh", description="Language of the advice for zones not listed in zone_lang.")
    zone_lang: dict[str, Lang] = Field(default_factory=dict, description="Language per zone id, e.g. "
                                       "{\"GH-2\": \"en\"}.")
    on_demand_days: int = Field(7, ge=1, le=366, description="A request for an advice not made yet makes it only "
                                "for dates this many days back at most (older ones are not invented after the fact).")
    model_deadline_s: float = Field(180.0, gt=0, le=3600, description="How long the model may take to rewrite one "
                                     "advice; past it the template is kept (and the advice says so).")
    check_s: float = Field(60.0, ge=1, le=3600, description="How often the scheduler looks whether advice is due.")
    min_minutes: float = Field(30.0, ge=0, le=1440, description="Time outside the target band, per period, below "
                               "which it is not a finding (a short excursion is noise, not a day's pattern).")
    transition_min: float = Field(120.0, ge=0, le=360, description="Minutes after the day starts and after it ends "
                                  "in which day/night targets are not judged (CG-TOM-01 §5.2: rise ≤ 1.5 °C/h in the "
                                  "morning, down to the night setpoint within 2 h); alarms still count.")
    min_coverage: float = Field(0.8, ge=0, le=1, description="Share of the day with readings below which a "
                                "metric's figures are reported as incomplete.")
