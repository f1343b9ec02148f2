"""The waste-code catalogue: China's National Hazardous Waste List and general solid waste.

Hazardous waste codes have the 8-digit form ``NNN-NNN-NN``: the industry
source, a serial within it, and the two-digit category (``HW01``–``HW50``)
that the last two digits name. Categories HW41–HW44 were merged into others
in the 2016 revision and are kept only so old records still read; new codes
in them are refused.

General industrial solid waste (一般工业固体废物) is coded by category,
``SW01``–``SW17`` and ``SW59``, following the 2021 guidance of the Ministry
of Ecology and Environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from waste.errors import WasteCodeError

WasteClass = Literal["hazardous", "general_industrial"]


@dataclass(frozen=True, slots=True)
class WasteCategory:
    """One category of the catalogue."""

    code: str
    name_zh: str
    name_en: str
    waste_class: WasteClass
    retired: bool = False


_HW: tuple[tuple[str, str, str], ...] = (
    ("01", "医疗废物", "Medical waste"),
    ("02", "医药废物", "Pharmaceutical production waste"),
    ("03", "废药物、药品", "Discarded drugs and medicines"),
    ("04", "农药废物", "Pesticide waste"),
    ("05", "木材防腐剂废物", "Wood preservative waste"),
    ("06", "废有机溶剂与含有机溶剂废物", "Waste organic solvents"),
    ("07", "热处理含氰废物", "Cyanide-bearing heat treatment waste"),
    ("08", "废矿物油与含矿物油废物", "Waste mineral oil"),
    ("09", "油/水、烃/水混合物或乳化液", "Oil/water and hydrocarbon/water mixtures or emulsions"),
    ("10", "多氯（溴）联苯类废物", "PCB / PBB waste"),
    ("11", "精（蒸）馏残渣", "Distillation residues"),
    ("12", "染料、涂料废物", "Dye and paint waste"),
    ("13", "有机树脂类废物", "Organic resin waste"),
    ("14", "新化学物质废物", "New chemical substance waste"),
    ("15", "爆炸性废物", "Explosive waste"),
    ("16", "感光材料废物", "Photosensitive material waste"),
    ("17", "表面处理废物", "Surface treatment waste"),
    ("18", "焚烧处置残渣", "Incineration residues"),
    ("19", "含金属羰基化合物废物", "Metal carbonyl waste"),
    ("20", "含铍废物", "Beryllium-bearing waste"),
    ("21", "含铬废物", "Chromium-bearing waste"),
    ("22", "含铜废物", "Copper-bearing waste"),
    ("23", "含锌废物", "Zinc-bearing waste"),
    ("24", "含砷废物", "Arsenic-bearing waste"),
    ("25", "含硒废物", "Selenium-bearing waste"),
    ("26", "含镉废物", "Cadmium-bearing waste"),
    ("27", "含锑废物", "Antimony-bearing waste"),
    ("28", "含碲废物", "Tellurium-bearing waste"),
    ("29", "含汞废物", "Mercury-bearing waste"),
    ("30", "含铊废物", "Thallium-bearing waste"),
    ("31", "含铅废物", "Lead-bearing waste"),
    ("32", "无机氟化物废物", "Inorganic fluoride waste"),
    ("33", "无机氰化物废物", "Inorganic cyanide waste"),
    ("34", "废酸", "Waste acid"),
    ("35", "废碱", "Waste alkali"),
    ("36", "石棉废物", "Asbestos waste"),
    ("37", "有机磷化合物废物", "Organophosphorus waste"),
    ("38", "有机氰化物废物", "Organic cyanide waste"),
    ("39", "含酚废物", "Phenolic waste"),
    ("40", "含醚废物", "Ether-bearing waste"),
    ("41", "废卤化有机溶剂", "Waste halogenated organic solvents (retired 2016)"),
    ("42", "废有机溶剂", "Waste organic solvents (retired 2016)"),
    ("43", "含多氯苯并呋喃类废物", "PCDF-bearing waste (retired 2016)"),
    ("44", "含多氯苯并二噁英废物", "PCDD-bearing waste (retired 2016)"),
    ("45", "含有机卤化物废物", "Organohalogen waste"),
    ("46", "含镍废物", "Nickel-bearing waste"),
    ("47", "含钡废物", "Barium-bearing waste"),
    ("48", "有色金属采选和冶炼废物", "Non-ferrous metal mining and smelting waste"),
    ("49", "其他废物", "Other waste"),
    ("50", "废催化剂", "Spent catalysts"),
)
_RETIRED = {"41", "42", "43", "44"}

_SW: tuple[tuple[str, str, str], ...] = (
    ("01", "冶炼废渣", "Smelting slag"),
    ("02", "粉煤灰", "Fly ash"),
    ("03", "炉渣", "Furnace slag"),
    ("04", "煤矸石", "Coal gangue"),
    ("05", "尾矿", "Tailings"),
    ("06", "脱硫石膏", "Desulphurisation gypsum"),
    ("07", "污泥", "Sludge"),
    ("09", "赤泥", "Red mud"),
    ("10", "磷石膏", "Phosphogypsum"),
    ("11", "工业副产石膏", "Industrial by-product gypsum"),
    ("12", "钻井岩屑", "Drill cuttings"),
    ("13", "食品残渣", "Food residues"),
    ("14", "纺织皮革业废物", "Textile and leather waste"),
    ("15", "造纸印刷业废物", "Paper and printing waste"),
    ("16", "化工废物", "Chemical industry waste"),
    ("17", "可再生类废物", "Recyclable waste"),
    ("59", "其他工业固体废物", "Other industrial solid waste"),
)

CATEGORIES: dict[str, WasteCategory] = {
    **{
        f"HW{n}": WasteCategory(f"HW{n}", zh, en, "hazardous", retired=n in _RETIRED)
        for n, zh, en in _HW
    },
    **{f"SW{n}": WasteCategory(f"SW{n}", zh, en, "general_industrial") for n, zh, en in _SW},
}

_HAZARDOUS_CODE = re.compile(r"^(\d{3})-(\d{3})-(\d{2})$")
_GENERAL_CODE = re.compile(r"^SW\d{2}$")


def category_of(code: str) -> WasteCategory:
    """The catalogue category a waste code belongs to; ``WasteCodeError`` if there is none."""
    return _lookup(code, field="code")


def validate_waste_code(code: object, *, field: str = "code") -> str:
    """Return ``code`` if it is a current catalogue code, else raise ``WasteCodeError``."""
    if not isinstance(code, str):
        raise WasteCodeError("a waste code must be a string", field=field)
    category = _lookup(code, field=field)
    if category.retired:
        raise WasteCodeError(
            f"{code}: category {category.code} was retired in 2016; use its successor category",
            field=field,
        )
    return code


def is_hazardous(code: str) -> bool:
    """Whether ``code`` is on the national hazardous waste list."""
    return _HAZARDOUS_CODE.match(code) is not None


def _lookup(code: str, *, field: str) -> WasteCategory:
    m = _HAZARDOUS_CODE.match(code)
    if m is not None:
        category = CATEGORIES.get(f"HW{m.group(3)}")
        if category is None:
            raise WasteCodeError(
                f"{code}: the last two digits must name a category HW01–HW50", field=field
            )
        return category
    if _GENERAL_CODE.match(code):
        category = CATEGORIES.get(code)
        if category is None:
            raise WasteCodeError(f"{code}: no such general solid waste category", field=field)
        return category
    raise WasteCodeError(
        f"{code!r} is neither a hazardous waste code NNN-NNN-NN nor a category SWnn", field=field
    )
