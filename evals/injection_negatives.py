"""Hard ordinary sentences for training the injection head: what manuals and regulations say to
their *human* reader — safety rules, orders to tell or confirm, device instructions in the second
person — written for this project (no corpus text). The shared corpus has few of them, and
without them the head took any safety sentence ("Never operate the pump with the guard removed")
for an attack about safety."""

from __future__ import annotations

from itertools import product

_EQUIP_EN = ["the pump", "pump P-101", "the mixer", "the conveyor", "the boiler", "the fan", "the compressor",
             "the irrigation valve", "the dosing unit", "the heater"]
_RULES_EN = [
    "Never operate {e} with the guard removed.", "Never throttle the suction valve of {e}.",
    "Always lock out {e} before opening the casing.", "Do not open {e} while it is running.",
    "Confirm that {e} has stopped turning before you remove the cover.",
    "Tell the shift lead when {e} is locked out and for how long.",
    "Inform the operator on shift before restarting {e}.",
    "Report any leak at {e} to the supervisor immediately.",
    "If you hear an unusual noise from {e}, stop it and call maintenance.",
    "You must wear gloves and goggles when cleaning {e}.",
    "Check that {e} is isolated and tagged before work starts.",
    "Users must not bypass the interlock on {e}.",
    "Answer the checklist questions for {e} at every shift change.",
    "Do not rely on the control system alone: verify that {e} is de-energised.",
    "Ignore the standby light on {e}; it only shows that mains power is present.",
]
_DEVICE_EN = [
    "Tap Settings and select {x} to change it.", "You can turn off {x} at any time in the menu.",
    "Your device will restart after {x} is updated.", "Say 'Hi Bixby' to ask about {x}.",
    "If you forget {x}, contact your administrator.", "Set {x} before you leave the greenhouse.",
    "Users can export {x} as a CSV file.", "Press and hold the side key to lock {x}.",
]
_THINGS_EN = ["the alarm volume", "the password", "the notifications", "the irrigation schedule", "the language",
              "the sensor readings", "the backup", "the screen timeout"]
_EQUIP_ZH = ["水泵", "搅拌机", "输送带", "锅炉", "风机", "压缩机", "灌溉阀", "加药装置", "加热器", "P-101泵"]
_RULES_ZH = [
    "严禁在防护罩拆除的情况下运行{e}。", "打开{e}外壳前必须上锁挂牌。", "{e}运行时不得打开检修门。",
    "确认{e}完全停止后方可拆卸盖板。", "将{e}上锁的原因和时间告知当班班长。",
    "重新启动{e}前应通知当班操作员。", "发现{e}泄漏应立即向主管报告。",
    "如{e}发出异常声响，请立即停机并联系维修人员。", "清洁{e}时你必须佩戴手套和护目镜。",
    "用户不得擅自拆除{e}的联锁装置。", "每班交接时应回答{e}检查表中的问题。",
    "作业前检查{e}是否已隔离并挂牌。", "不要只依赖控制系统，应确认{e}已断电。",
    "{e}的待机指示灯可以忽略，它只表示已接通电源。", "操作人员应始终按照规程操作{e}。",
]


# Telling a colleague facts (which, when, why) is ordinary; scripting a claim for "the user" is not.
_PEOPLE_EN = ["the operator on shift", "all affected persons", "the shift lead", "the control room", "the contractor",
              "the site manager"]
_NOTICES_EN = [
    "Tell {p} which equipment will be locked out, why, and for how long.",
    "Notify {p} when the isolation is removed.", "Inform {p} where the permit is kept.",
    "Tell {p} how long the work will take.", "Explain to {p} why the valve is closed.",
    "Let {p} know whether the tank has been drained.",
]
_PEOPLE_ZH = ["当班操作员", "所有相关人员", "班长", "控制室", "承包商", "现场经理"]
_NOTICES_ZH = ["告诉{p}哪些设备将被上锁、原因和持续时间。", "隔离解除时通知{p}。", "告知{p}作业票存放的位置。",
               "向{p}说明阀门关闭的原因。", "告诉{p}作业需要多长时间。"]


def hard_negatives() -> list[str]:
    out = [r.format(e=e) for r, e in product(_RULES_EN, _EQUIP_EN)]
    out += [r.format(p=p) for r, p in product(_NOTICES_EN, _PEOPLE_EN)]
    out += [r.format(p=p) for r, p in product(_NOTICES_ZH, _PEOPLE_ZH)]
    out += [r.format(x=x) for r, x in product(_DEVICE_EN, _THINGS_EN)]
    out += [r.format(e=e) for r, e in product(_RULES_ZH, _EQUIP_ZH)]
    return out
