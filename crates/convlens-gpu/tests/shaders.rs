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

/// The f16-weight variants of the conv and FC kernels (derived by `f16_weights`) validate too,
/// with naga's f16 capabilities, as wgpu compiles them where the device has shader-f16 (which
/// implies the downlevel flag for `unpack2x16float`, core WGSL, that `conv_direct`'s packed
/// halves use).
#[test]
fn f16_weight_variants_validate() {
    for file in convlens_gpu::F16_WEIGHT_FILES {
        let src = convlens_gpu::SHADERS.iter().find(|(f, _)| f == file).unwrap().1;
        let f16 = convlens_gpu::f16_weights(src);
        assert!(f16.contains("array<f16>") && f16.starts_with("enable f16;"), "{file}");
        let module = naga::front::wgsl::parse_str(&f16).unwrap_or_else(|e| panic!("{file} (f16): {}", e.emit_to_string(&f16)));
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::SHADER_FLOAT16 | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32);
        v.validate(&module).unwrap_or_else(|e| panic!("{file} (f16): {e:?}"));
    }
}
