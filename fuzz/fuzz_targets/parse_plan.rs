#![no_main]
//! Parse + plan arbitrary bytes: the frontend must never panic, whatever the input.

use distill_dockerfile::plan::{self, PlanOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ast) = distill_dockerfile::parse(data) else { return };
    let _ = ast.dump();
    let mut options = PlanOptions { all_stages: true, ..PlanOptions::default() };
    options.build_args.insert("VERSION".into(), "1.2.3".into());
    if let Ok(p) = plan::plan(&ast, &options) {
        let _ = p.build_order();
        let _ = p.check_error();
        // Every named stage as the target too.
        for name in p.stages.iter().filter_map(|s| s.name.clone()).take(4) {
            let opts = PlanOptions { target: Some(name), ..PlanOptions::default() };
            let _ = plan::plan(&ast, &opts);
        }
    }
});
