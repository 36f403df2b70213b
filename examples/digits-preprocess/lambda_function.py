# Seed 002's two chained functions: this one turns an uploaded handwritten digit (a PNG,
# base64 in JSON) into the 64 inputs of the native `digits` model and invokes it through
# modelfn's invoke API (AWS_ENDPOINT_URL points at this modelfn).
import base64
import io
import json
import os
import urllib.request

from PIL import Image, ImageOps

MODEL_FUNCTION = os.environ.get('MODEL_FUNCTION', 'digits')


def to_features(png_bytes):
    """8x8 intensities from 0 (paper) to 16 (ink), like scikit-learn's digits."""
    img = Image.open(io.BytesIO(png_bytes)).convert('L')
    img = ImageOps.invert(img).resize((8, 8), Image.BOX)
    return [round(p * 16.0 / 255.0, 4) for p in img.getdata()]


def lambda_handler(event, context):
    try:
        png = base64.b64decode(event['image'], validate=True)
        features = to_features(png)
    except Exception as e:
        return {'error': "'image' must be a base64 PNG of a digit: %s" % e}
    url = '%s/v1/functions/%s/invoke' % (os.environ['AWS_ENDPOINT_URL'], MODEL_FUNCTION)
    req = urllib.request.Request(url, data=json.dumps(features).encode(),
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=context.get_remaining_time_in_millis() / 1000.0) as resp:
        answer = json.load(resp)
    return {'digit': answer['prediction']}
