"""Citations registry: every rule names one of these keys, so each output can say where it comes from.

Each entry names the primary source (paper with DOI where it has one, or the official document).
Anything not re-read in the source is marked [unverified] here and in docs/GUIDELINES.md.
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
            "Kim HC, Ihm SH, Kim GH, et al. 2018 Korean Society of Hypertension guidelines for the "
            "management of hypertension: part I-epidemiology of hypertension. Clin Hypertens. "
            "2019;25:16. doi:10.1186/s40885-019-0121-0 (Table 1, classification of blood pressure); "
            "Lee HY, Shin J, Kim GH, et al. ... part II-diagnosis and treatment of hypertension. "
            "Clin Hypertens. 2019;25:20. doi:10.1186/s40885-019-0124-x. Office classification "
            "retained by the 2022 focused update (Kim HL, et al. Clin Hypertens. 2023;29:11).",
            "Hypertension = SBP >= 140 or DBP >= 90, grades by the higher of SBP/DBP, and isolated "
            "systolic = SBP >= 140 with DBP < 90 are confirmed in part I; the numeric grade bounds "
            "140-159/90-99 and >= 160/>= 100 are [unverified] (the table body was not re-read).",
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
            "III final report. Circulation. 2002;106(25):3143-3421. doi:10.1161/circ.106.25.3143. "
            "Lipid categories and the risk categories (major risk factors: cigarette smoking, BP >= "
            "140/90 or drugs, HDL < 40, family history of premature CHD, age men >= 45 / women >= 55; "
            "HDL >= 60 removes one; diabetes is a CHD risk equivalent). Same lipid categories in the "
            "Korean Society of Lipid and Atherosclerosis guideline (Rhee EJ, et al. 2018 Guidelines "
            "for the Management of Dyslipidemia in Korea. J Lipid Atheroscler. 2019;8(2):78-131; "
            "5th ed. 2022).",
        ),
        Guideline(
            "SCREENING_GROUP",
            "screening-flag count, adapted from ATP III categories",
            "The previous NHIS screening system's grouping, adapted from the NCEP ATP III risk "
            "categories (Circulation. 2002;106(25):3143-3421. doi:10.1161/circ.106.25.3143): diabetes "
            "first, then the count of seven screening flags (0-1 vs >= 2).",
            "Not ATP III: it counts TC, TG and BMI, which ATP III does not, and leaves out age. Kept so "
            "users can compare with the previous system; atp3_risk_category is the ATP III category.",
        ),
        Guideline(
            "KNHANES_DYSLIPIDAEMIA",
            "Korean epidemiological definition (KNHANES)",
            "Lee MH, et al. Prevalence of Dyslipidemia among Korean Adults: Korea "
            "National Health and Nutrition Survey 1998-2005. Diabetes Metab J. 2012;36(1):43-55. "
            "doi:10.4093/dmj.2012.36.1.43 (TC >= 240, LDL >= 160, HDL < 40 or TG >= 200 mg/dL, the "
            "NCEP ATP III cut points).",
            "Korean fact sheets also count lipid-lowering medication, which the dataset does not have.",
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
            "Race. N Engl J Med. 2021;385(19):1737-1749. doi:10.1056/NEJMoa2102953.",
            "Adult equation: computed only from age 20 (age band 5) in this system.",
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
            "the Framingham Heart Study. Circulation. 2008;117(6):743-753. "
            "doi:10.1161/CIRCULATIONAHA.107.699579.",
            "US-derived; overestimates absolute risk in Korean adults (Park S, et al. Epidemiol "
            "Health. 2023;45:e2023052; Jee SH, et al. BMJ Open. 2014;4:e005025).",
        ),
    )
}
