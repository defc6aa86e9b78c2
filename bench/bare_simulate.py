"""Baseline for bench/simulate.py: the old system's simulator shape — a bare Flask endpoint that
range-checks eleven fields and returns seven flags, a count and a group (no auth, no categories,
no what-if, no peers)."""

from flask import Flask, jsonify, request

app = Flask(__name__)
RANGES = {"age_group": (5, 18), "gender": (1, 2), "height": (140, 200), "weight": (30, 150),
          "systolic_bp": (70, 250), "diastolic_bp": (40, 150), "fasting_glucose": (50, 400),
          "total_cholesterol": (100, 400), "triglycerides": (30, 500), "hdl_cholesterol": (20, 100)}


@app.post("/simulate")
def simulate():
    data = request.get_json()
    bad = {k: f"Must be between {lo} and {hi}" for k, (lo, hi) in RANGES.items() if not lo <= data.get(k, -1) <= hi}
    if bad:
        return jsonify(error="Validation Error", details=bad), 400
    bmi = round(data["weight"] / (data["height"] / 100) ** 2, 1)
    flags = {
        "hypertension": data["systolic_bp"] >= 140 or data["diastolic_bp"] >= 90,
        "diabetes": data["fasting_glucose"] >= 126,
        "high_total_cholesterol": data["total_cholesterol"] >= 240,
        "high_triglycerides": data["triglycerides"] >= 200,
        "low_hdl": data["hdl_cholesterol"] < 40,
        "obesity_asia": bmi >= 25,
        "smoking": data.get("smoking_status") == "current",
    }
    count = sum(flags.values())
    group = ("CHD_RISK_EQUIVALENT" if flags["diabetes"] else
             "MULTIPLE_RISK_FACTORS" if count >= 2 else "ZERO_TO_ONE_RISK_FACTOR")
    return jsonify(input={"bmi": bmi}, result={"risk_factor_count": count, "risk_group": group, "flags": flags})
