#[test]
fn scratch() {
    for f in ["/tmp/scratch/a.weir", "/tmp/scratch/b.weir"] {
        let src = std::fs::read_to_string(f).unwrap();
        let p = weir_compiler::syntax::parse(f, &src);
        if f.ends_with("a.weir") { println!("{:#?}", p.module.items.iter().map(|i| (i.kind.name().map(|n| n.name.clone()), i.doc.clone())).collect::<Vec<_>>()); }
        let mut m = std::collections::BTreeMap::new();
        m.insert(f.to_string(), src.clone());
        println!("{}", weir_compiler::diagnostics::render::render_terminal(&p.diagnostics, &m, Default::default()));
    }
}
