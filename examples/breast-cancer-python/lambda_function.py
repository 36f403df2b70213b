# Seed 004's function, written from its description: the event is a function URL
# event whose 'body' is the JSON the clinic sent; the answer is reason/prediction/status.
import json

import joblib

FEATURES = ['meanConcavePoints', 'worstRadius', 'worstTexture', 'worstArea', 'worstConcavePoints']

clf = joblib.load('clf.sav')


def lambda_handler(event, context):
    body = event.get('body') if isinstance(event, dict) else None
    try:
        if isinstance(body, str):
            body = json.loads(body)
        x = [[float(body[f]) for f in FEATURES]]
    except (KeyError, TypeError, ValueError):
        return {
            'reason': "'body' must contain values for: " + ', '.join(FEATURES),
            'prediction': '',
            'status': '400',
        }
    return {'reason': 'OK', 'prediction': int(clf.predict(x)[0]), 'status': '200'}
