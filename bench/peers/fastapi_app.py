"""What a data scientist writes instead of Lambda: FastAPI + uvicorn serving the iris
forest with scikit-learn and joblib (the same model as examples/iris-python)."""
import os

from fastapi import FastAPI
from joblib import load
from pydantic import BaseModel

MODEL = load(os.environ.get("MODEL_PATH", "examples/iris-python/model.joblib"))
NAMES = ["setosa", "versicolor", "virginica"]
app = FastAPI()


class Iris(BaseModel):
    sl: float
    sw: float
    pl: float
    pw: float


@app.post("/predict")
def predict(x: Iris):
    y = MODEL.predict([[x.sl, x.sw, x.pl, x.pw]])[0]
    return {"prediction": NAMES[int(y)]}
