"""Sales regions by ISO 3166-1 alpha-2 country code.

Sales organisations split the world into NA / LATAM / EMEA / APAC rather than continents: Mexico
and the Caribbean sell with Latin America, Central Asia and the Middle East with EMEA. This is the
common convention; rules that need another split can test ``country`` directly.
"""

from __future__ import annotations

__all__ = ["REGIONS", "REGION_OF"]

_NA = "US CA BM GL PM PR VI UM"
_LATAM = (
    "MX GT BZ SV HN NI CR PA AG AI AW BS BB BQ VG KY CU CW DM DO GD GP HT JM MQ MS KN LC MF VC SX "
    "TT TC BL AR BO BR CL CO EC FK GF GY PY PE SR UY VE GS"
)
_EMEA = (
    "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT "
    "LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK "
    "AE BH IL IQ IR JO KW LB OM PS QA SA SY TR YE AM AZ GE KZ KG TJ TM UZ "
    "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG "
    "MW ML MR MU YT MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH ZM ZW"
)
_APAC = (
    "AF BD BT IN MV NP PK LK CN HK MO JP KP KR MN TW BN KH ID LA MY MM PH SG TH TL VN "
    "AS AU CK FJ PF GU KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK TO TV VU WF IO CX CC HM"
)

REGIONS = ("NA", "LATAM", "EMEA", "APAC")

REGION_OF: dict[str, str] = {
    code: region
    for region, codes in (("NA", _NA), ("LATAM", _LATAM), ("EMEA", _EMEA), ("APAC", _APAC))
    for code in codes.split()
}
