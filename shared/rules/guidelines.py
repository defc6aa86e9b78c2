"""Citations registry: every rule names one of these keys, so each output can say where it comes from.

Citations follow /work/shared/reference/nhis-data.md §4–§5. Anything that reference marks
[unverified] keeps the mark here and in docs/GUIDELINES.md.
"""

from __future__ import annotations

from dataclasses import dataclass

DISCLAIMER = (
    "Screening information computed from single measurements against published guideline "
    "thresholds; it is not a diagnosis. A single fasting glucose, blood pressure or creatinine value "
    "can only raise a suspicion that needs confirmation by a clinician (repeat tests, history, "
    "medication). The 10-year cardiovascular risk uses a US-derived model that tends to overestimate "
    "risk in Korean adults."
)


@dataclass(frozen=True, slots=True)
class Guideline:
    """One published source; ``short`` is what explanations show, ``citation`` the full reference."""

    key: str
    short: str
    citation: str
    note: str = ""


GUIDELINES: dict[str, Guideline] = {
    g.key: g
    for g in (
        Guideline(
            "KSH_2018",
            "KSH 2018",
            "Kim KI, et al. 2018 Korean Society of Hypertension guidelines for the management of "
            "hypertension. Clin Hypertens. 2019;25:20. doi:10.1186/s40885-019-0121-0. Office "
            "classification retained by the 2022 focused update (Kim HL, et al. Clin Hypertens. "
            "2023;29:11).",
            "Hypertension = SBP >= 140 or DBP >= 90 is confirmed; the grade bounds 140-159/90-99 and "
            ">= 160/>= 100 are [unverified] (recalled from Table 1, not re-read).",
        ),
        Guideline(
            "ADA_KDA",
            "ADA 2024 / KDA 2023",
            "American Diabetes Association Professional Practice Committee. 2. Diagnosis and "
            "Classification of Diabetes: Standards of Care in Diabetes-2024. Diabetes Care. "
            "2024;47(Suppl 1):S20-S42; and Korean Diabetes Association, 2023 Clinical Practice "
            "Guidelines for Diabetes Mellitus (Diabetes Metab J. 2023;47(5):575-594).",
            "A single screening value is 'suspected'; diagnosis needs a repeat test or HbA1c >= 6.5%.",
        ),
        Guideline(
            "KSSO_2022",
            "KSSO 2022",
            "Haam JH, et al. Diagnosis of Obesity: 2022 Update of Clinical Practice Guidelines for "
            "Obesity by the Korean Society for the Study of Obesity. J Obes Metab Syndr. "
            "2023;32(2):121-129.",
            "BMI classes follow the WHO Western Pacific Region 2000 Asia-Pacific cut-offs "
            "(The Asia-Pacific perspective: redefining obesity and its treatment. WHO WPRO/IASO/IOTF, "
            "2000), with obesity class III at >= 35.",
        ),
        Guideline(
            "KSSO_WAIST",
            "KSSO",
            "Haam JH, et al. J Obes Metab Syndr. 2023;32(2):121-129; Nam GE, Park HS. J Obes Metab "
            "Syndr. 2018;27(3):134 (waist >= 90 cm men, >= 85 cm women).",
        ),
        Guideline(
            "ATP3_2002",
            "NCEP ATP III",
            "Expert Panel on Detection, Evaluation, and Treatment of High Blood Cholesterol in Adults. "
            "Third Report of the National Cholesterol Education Program (NCEP) Adult Treatment Panel "
            "III final report. Circulation. 2002;106(25):3143-3421. Same lipid categories in the "
            "Korean Society of Lipid and Atherosclerosis guideline (Rhee EJ, et al. 2018 Guidelines "
            "for the Management of Dyslipidemia in Korea. J Lipid Atheroscler. 2019;8(2):78-131; "
            "5th ed. 2022).",
        ),
        Guideline(
            "ATP3_RISK",
            "NCEP ATP III risk categories",
            "NCEP ATP III final report (Circulation. 2002;106:3143-3421): diabetes as a CHD risk "
            "equivalent, and the count of major risk factors (0-1 vs >= 2).",
            "Adapted as in the previous system: the factors counted are the seven screening flags "
            "here (hypertension, diabetes, high TC, high TG, low HDL, obesity, current smoking), not "
            "ATP III's exact list (which includes age and family history).",
        ),
        Guideline(
            "NCEP_2005",
            "NCEP ATP III (AHA/NHLBI 2005), Korean waist",
            "Grundy SM, et al. Diagnosis and management of the metabolic syndrome: an American Heart "
            "Association/National Heart, Lung, and Blood Institute Scientific Statement. Circulation. "
            "2005;112(17):2735-2752; waist cut-offs 90/85 cm per KSSO (as used by the NHIS "
            "health-screening statistical yearbook).",
            "No medication data: components use measured values only.",
        ),
        Guideline(
            "WHO_2011_HB",
            "WHO 2011",
            "World Health Organization. Haemoglobin concentrations for the diagnosis of anaemia and "
            "assessment of severity. Vitamin and Mineral Nutrition Information System. Geneva: WHO; "
            "2011 (WHO/NMH/NHD/MNM/11.1).",
        ),
        Guideline(
            "CKD_EPI_2021",
            "CKD-EPI 2021",
            "Inker LA, et al. New Creatinine- and Cystatin C-Based Equations to Estimate GFR without "
            "Race. N Engl J Med. 2021;385(19):1737-1749.",
        ),
        Guideline(
            "KDIGO_2012",
            "KDIGO",
            "Kidney Disease: Improving Global Outcomes (KDIGO) CKD Work Group. KDIGO 2012 Clinical "
            "Practice Guideline for the Evaluation and Management of Chronic Kidney Disease. Kidney "
            "Int Suppl. 2013;3(1):1-150 (GFR categories kept by the 2024 update).",
            "CKD needs abnormality for > 3 months; one screening value gives a GFR category only.",
        ),
        Guideline(
            "NHIS_MANUAL",
            "NHIS screening manual",
            "National Health Insurance Service, health-screening open data user manual (code "
            "descriptions): urine protein dipstick codes 1 (-), 2 (+/-), 3-6 (+1..+4); reference "
            "ranges AST 0-40, ALT 0-40 IU/L, GGT men 11-63, women 8-35 IU/L (as reproduced by "
            "statgarten/datatoys R/data.R).",
            "These are the dataset's reference ranges, used as screening flags, not diagnostic criteria.",
        ),
        Guideline(
            "FRAMINGHAM_2008",
            "Framingham 2008",
            "D'Agostino RB Sr, et al. General cardiovascular risk profile for use in primary care: "
            "the Framingham Heart Study. Circulation. 2008;117(6):743-753.",
            "US-derived; overestimates absolute risk in Korean adults (Park S, et al. Epidemiol "
            "Health. 2023;45:e2023052; Jee SH, et al. BMJ Open. 2014;4:e005025).",
        ),
    )
}
