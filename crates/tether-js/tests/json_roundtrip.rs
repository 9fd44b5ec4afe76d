//! Property test: any JSON value survives JSON → JS → JSON unchanged.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use tether_js::{Config, HostValue, Runtime};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(Config::default()).expect("runtime"))
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
        (-1e12f64..1e12)
            .prop_filter("not integral", |f| f.fract() != 0.0)
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn json_survives_a_trip_through_js(v in json()) {
        let rt = runtime();
        rt.set_global("v", HostValue::from_json(&v)).expect("set");
        let back = rt.eval("v").expect("eval").to_json();
        prop_assert_eq!(back, v);
    }
}
