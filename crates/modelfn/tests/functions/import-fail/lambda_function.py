import module_that_does_not_exist


def lambda_handler(event, context):
    return "never"
