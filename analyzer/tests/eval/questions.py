"""Everyday questions over four public datasets, each with its truth computed by pandas from the same file.

A question is (text, check, truth): `truth(df)` computes the expected answer; `check` names how an
answer is compared with it (see analyzer/tests/eval/scoring.py). Questions of one dataset are asked in
order in one session, so a follow-up ("and by island?") reads the question before it. "ask" marks a
question a careful analyst has to ask back about (it names no single column).
"""

from __future__ import annotations

import pandas as pd


def penguins(df: pd.DataFrame) -> list:
    mass, flipper, beak_l, beak_d = "Body Mass (g)", "Flipper Length (mm)", "Beak Length (mm)", "Beak Depth (mm)"
    female, male = df["Sex"] == "FEMALE", df["Sex"] == "MALE"
    return [
        ("How many female penguins weigh more than 4000 g?", "scalar",
         lambda d: int((female & (d[mass] > 4000)).sum())),
        ("What's the average body mass of each species?", "mapping", lambda d: d.groupby("Species")[mass].mean()),
        ("and by island?", "mapping", lambda d: d.groupby("Island")[mass].mean()),
        ("only females", "mapping", lambda d: d[female].groupby("Island")[mass].mean()),
        ("Which species has the longest flippers on average?", "top_key",
         lambda d: d.groupby("Species")[flipper].mean().idxmax()),
        ("How many penguins were observed on each island?", "mapping", lambda d: d["Island"].value_counts()),
        ("Show me the 5 heaviest penguins", "sequence", lambda d: d[mass].nlargest(5).tolist()),
        ("what is the correlation between flipper length and body mass", "scalar",
         lambda d: d[flipper].corr(d[mass])),
        ("How many penguins have no sex recorded?", "scalar", lambda d: int(d["Sex"].isna().sum())),
        ("missing values per column", "mapping", lambda d: d.isna().sum()),
        ("What species are in the data?", "set", lambda d: set(d["Species"].dropna())),
        ("What percentage of penguins are male?", "scalar", lambda d: 100 * male.mean()),
        ("plot bill length against bill depth", "chart:point", lambda d: (beak_l, beak_d)),
        ("histogram of body mass", "chart:histogram", lambda d: int(d[mass].notna().sum())),
        ("median flipper length for Gentoo penguins", "scalar",
         lambda d: d.loc[d["Species"] == "Gentoo", flipper].median()),
        ("What is the smallest beak depth?", "scalar", lambda d: d[beak_d].min()),
        ("How many Adelie penguins live on Dream or Torgersen?", "scalar",
         lambda d: int(((d["Species"] == "Adelie") & d["Island"].isin(["Dream", "Torgersen"])).sum())),
        ("average bill length of penguins between 3000 and 4000 grams", "scalar",
         lambda d: d.loc[d[mass].between(3000, 4000), beak_l].mean()),
        ("What is the mean body mass of male Gentoo penguins?", "scalar",
         lambda d: d.loc[male & (d["Species"] == "Gentoo"), mass].mean()),
        ("what's the average length?", "ask", None),
    ]


def cars(df: pd.DataFrame) -> list:
    year = pd.to_datetime(df["Year"]).dt.year
    mpg = "Miles_per_Gallon"
    return [
        ("How many cars have more than 6 cylinders and were made after 1975?", "scalar",
         lambda d: int(((d["Cylinders"] > 6) & (year > 1975)).sum())),
        ("average mpg by origin", "mapping", lambda d: d.groupby("Origin")[mpg].mean()),
        ("Which car has the best fuel economy?", "top_key", lambda d: d.loc[d[mpg].idxmax(), "Name"]),
        ("top 5 cars by horsepower", "sequence", lambda d: d["Horsepower"].nlargest(5).tolist()),
        ("How heavy is the heaviest car?", "scalar", lambda d: d["Weight_in_lbs"].max()),
        ("average horsepower per year", "mapping", lambda d: d.groupby(year)["Horsepower"].mean()),
        ("as a bar chart", "chart:bar", None),
        ("How many cars come from Japan?", "scalar", lambda d: int((d["Origin"] == "Japan").sum())),
        ("What share of the cars are from Europe?", "scalar", lambda d: 100 * (d["Origin"] == "Europe").mean()),
        ("correlation of weight and mpg", "scalar", lambda d: d["Weight_in_lbs"].corr(d[mpg])),
        ("scatter plot of horsepower vs acceleration", "chart:point", lambda d: ("Horsepower", "Acceleration")),
        ("distribution of displacement", "chart:histogram", lambda d: int(d["Displacement"].notna().sum())),
        ("What is the median weight of 4 cylinder cars?", "scalar",
         lambda d: d.loc[d["Cylinders"] == 4, "Weight_in_lbs"].median()),
        ("Which origin has the most cars?", "top_key", lambda d: d["Origin"].value_counts().idxmax()),
        ("How many horsepower values are missing?", "scalar", lambda d: int(d["Horsepower"].isna().sum())),
        ("list the different origins", "set", lambda d: set(d["Origin"])),
        ("What's the lowest mpg among cars from USA?", "scalar", lambda d: d.loc[d["Origin"] == "USA", mpg].min()),
        ("number of cars per cylinder count", "mapping", lambda d: d["Cylinders"].value_counts()),
        ("average acceleration of cars with at least 150 horsepower", "scalar",
         lambda d: d.loc[d["Horsepower"] >= 150, "Acceleration"].mean()),
        ("what's the average price?", "ask", None),
    ]


def seattle_weather(df: pd.DataFrame) -> list:
    date = pd.to_datetime(df["date"])
    return [
        ("How many rainy days were there?", "scalar", lambda d: int((d["weather"] == "rain").sum())),
        ("What was the highest temperature recorded?", "scalar", lambda d: d["temp_max"].max()),
        ("average max temperature by month of the year", "mapping",
         lambda d: d.groupby(date.dt.month)["temp_max"].mean()),
        ("Which month of the year gets the most precipitation on average?", "top_key",
         lambda d: d.groupby(date.dt.month)["precipitation"].mean().idxmax()),
        ("total precipitation per year", "mapping", lambda d: d.groupby(date.dt.year)["precipitation"].sum()),
        ("What is the average wind speed on sunny days?", "scalar", lambda d: d.loc[d["weather"] == "sun", "wind"].mean()),
        ("What percentage of days had snow?", "scalar", lambda d: 100 * (d["weather"] == "snow").mean()),
        ("How many days had more than 20 mm of precipitation?", "scalar", lambda d: int((d["precipitation"] > 20).sum())),
        ("number of days for each weather type", "mapping", lambda d: d["weather"].value_counts()),
        ("What is the most common weather?", "top_key", lambda d: d["weather"].value_counts().idxmax()),
        ("average daily max temperature in 2015", "scalar", lambda d: d.loc[date.dt.year == 2015, "temp_max"].mean()),
        ("Which day had the strongest wind?", "top_key", lambda d: d.loc[d["wind"].idxmax(), "date"]),
        ("What was the coldest day?", "top_key", lambda d: d.loc[d["temp_min"].idxmin(), "date"]),
        ("average precipitation by day of the week", "mapping",
         lambda d: d.groupby(date.dt.dayofweek + 1)["precipitation"].mean()),
        ("median wind in foggy weather", "scalar", lambda d: d.loc[d["weather"] == "fog", "wind"].median()),
        ("How many days in 2013 had a max temp above 30?", "scalar",
         lambda d: int(((date.dt.year == 2013) & (d["temp_max"] > 30)).sum())),
        ("max temperature over time", "mapping",
         lambda d: d.groupby(date.dt.to_period("M").astype(str))["temp_max"].mean()),
        ("what was the average temperature on rainy days?", "ask", None),
    ]


def disasters(df: pd.DataFrame) -> list:
    def of(entity):
        return df[df["Entity"] == entity]

    return [
        ("How many deaths were caused by earthquakes in total?", "scalar", lambda d: int(of("Earthquake")["Deaths"].sum())),
        ("total deaths per year for floods", "mapping", lambda d: of("Flood").groupby("Year")["Deaths"].sum()),
        ("Which type of disaster killed the most people?", "top_key",
         lambda d: d.groupby("Entity")["Deaths"].sum().idxmax()),
        ("What year had the most deaths from drought?", "top_key",
         lambda d: int(of("Drought").loc[of("Drought")["Deaths"].idxmax(), "Year"])),
        ("How many different kinds of disasters are there?", "scalar", lambda d: d["Entity"].nunique()),
        ("What is the average number of deaths from wildfires?", "scalar", lambda d: of("Wildfire")["Deaths"].mean()),
        ("Show the 3 deadliest years for volcanic activity", "sequence",
         lambda d: of("Volcanic activity")["Deaths"].nlargest(3).tolist()),
        ("deaths by decade", "mapping", lambda d: d.groupby(d["Year"] // 10 * 10)["Deaths"].sum()),
        ("What share of all deaths were due to epidemics?", "scalar",
         lambda d: 100 * of("Epidemic")["Deaths"].sum() / d["Deaths"].sum()),
        ("What is the earliest year for wildfires?", "scalar", lambda d: int(of("Wildfire")["Year"].min())),
        ("mean deaths from extreme weather since 2000", "scalar",
         lambda d: d.loc[(d["Entity"] == "Extreme weather") & (d["Year"] >= 2000), "Deaths"].mean()),
        ("maximum deaths in a single year from landslides", "scalar", lambda d: of("Landslide")["Deaths"].max()),
        ("How many records are there for floods?", "scalar", lambda d: len(of("Flood"))),
        ("plot deaths from earthquakes over the years", "chart:line", None),
        ("what about landslides?", "mapping", lambda d: of("Landslide").groupby("Year")["Deaths"].sum()),
        ("total deaths from floods or droughts before 1950", "scalar",
         lambda d: int(d.loc[d["Entity"].isin(["Flood", "Drought"]) & (d["Year"] < 1950), "Deaths"].sum())),
        ("How many deaths did extreme temperature cause in 2003?", "scalar",
         lambda d: int(d.loc[(d["Entity"] == "Extreme temperature") & (d["Year"] == 2003), "Deaths"].sum())),
    ]


DATASETS = {
    "penguins.csv": penguins,
    "cars.csv": cars,
    "seattle-weather.csv": seattle_weather,
    "disasters.csv": disasters,
}
