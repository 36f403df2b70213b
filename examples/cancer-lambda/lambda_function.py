#给定一个sample，判断乳腺癌患者是隐性还是阳性
import os
import io
import boto3
import json
import csv

# grab environment variables
runtime= boto3.client('runtime.sagemaker')

def lambda_handler(event, context):
    print("Received event: " + json.dumps(event, indent=2))
   
    data = json.loads(json.dumps(event))
    payload = data['data']
    print(payload)
    
    response = runtime.invoke_endpoint(EndpointName="cancer-linear",
    ContentType='text/csv',
    Body=payload)
    print(response)
    result = json.loads(response['Body'].read().decode())
    print(result)
    pred = int((result['predictions'][0]['score']>0.5))
    predicted_label = 'M' if pred == 1 else 'B'

    return predicted_label
