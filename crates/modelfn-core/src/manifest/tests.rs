//! The manifest's parsing and validation, case by case.

use super::*;

const IRIS: &str = r#"
name = "iris"
runtime = "onnx"
[model]
file = "model.onnx"
inputs = ["sl", "sw", "pl", "pw"]
labels = ["setosa", "versicolor", "virginica"]
"#;

#[test]
fn defaults_follow_lambda() {
    let m = Manifest::from_toml(IRIS).unwrap();
    assert_eq!(m.memory_mb, 128);
    assert_eq!(m.timeout_ms, 3000);
    assert_eq!(m.model.as_ref().unwrap().inputs.len(), 4);
}

#[test]
fn round_trips_through_toml() {
    let m = Manifest::from_toml(IRIS).unwrap();
    assert_eq!(Manifest::from_toml(&m.to_toml()).unwrap(), m);
}

#[test]
fn python_handlers_and_layers() {
    let m = Manifest::from_toml(
            "name = \"f\"\nruntime = \"python3\"\nhandler = \"lambda_function.lambda_handler\"\nlayers = [\"sklearn\", \"pillow:2\"]\n[environment]\nMODEL = \"x\"\n",
        )
        .unwrap();
    assert_eq!(m.layers.len(), 2);
    assert!(valid_python_handler("pkg.sub.module.handler"));
    assert!(valid_python_handler("src/app.handler"));
    assert!(!valid_python_handler("handler"));
    assert!(!valid_python_handler("a..b"));
    assert_eq!(parse_layer_ref("pillow:2").unwrap().1, Some(2));
    assert!(parse_layer_ref("pillow:0").is_err());
    assert!(check_env_name("AWS_LAMBDA_FUNCTION_NAME").is_err());
    assert!(check_env_name("MODELFN_TOKEN").is_err());
    assert!(check_env_name("1X").is_err());
    assert!(check_env_name("AWS_ENDPOINT_URL").is_ok());
}

#[test]
fn paths_must_stay_inside() {
    assert!(check_relative_path("model.onnx").is_ok());
    assert!(check_relative_path("models/a.onnx").is_ok());
    assert!(check_relative_path("/etc/passwd").is_err());
    assert!(check_relative_path("a/../../b").is_err());
    assert!(check_relative_path("").is_err());
}
