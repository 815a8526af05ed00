//! Every WGSL kernel parses and validates with naga (what wgpu runs on them), so a shader
//! error fails here with its line, not at model load in a user's browser.

#[test]
fn every_shader_validates() {
    assert!(convlens_gpu::SHADERS.len() >= 4);
    for (name, src) in convlens_gpu::SHADERS {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
        v.validate(&module).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(module.entry_points.iter().all(|e| e.stage == naga::ShaderStage::Compute), "{name}");
    }
}
