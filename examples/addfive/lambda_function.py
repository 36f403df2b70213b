#Function
def lambda_handler(event, context):
    try:
        num=int(event['num'])
        return num+5
    except:
        return 0
