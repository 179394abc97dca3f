//! The default-avatar bake: a short bake (small mesh, few steps) runs, is deterministic,
//! lowers every loss and produces a valid avatar; the embedded default avatar is the baked
//! hand.

use candle_core::Device;
use xhand::avatar::Avatar;
use xhand::bake::{BakeConfig, bake, rig::GENERIC_HAND_GLB};

#[test]
fn short_bake_is_deterministic_lowers_its_losses_and_writes_a_valid_avatar() {
    let config = BakeConfig::quick();
    let mut lines = Vec::new();
    let baked = bake(GENERIC_HAND_GLB, "right.glb", &config, &mut |l| {
        lines.push(l.to_string())
    })
    .expect("quick bake");
    let again = bake(GENERIC_HAND_GLB, "right.glb", &config, &mut |_| {}).expect("quick bake");
    assert!(
        baked.writer.to_bytes().unwrap() == again.writer.to_bytes().unwrap(),
        "two bakes with the same seed differ"
    );
    let r = &baked.report;
    assert!(r.reduced_faces <= config.source_faces && r.reduced_faces > 0);
    assert_eq!(
        r.faces,
        r.reduced_faces * 4usize.pow(config.subdivisions as u32)
    );
    for (name, curve, higher_is_better) in [
        ("delta", &r.delta_curve, false),
        ("color", &r.color_curve, false),
        ("lbs", &r.lbs_curve, false),
        ("renderer", &r.renderer_curve, true),
    ] {
        let (first, last) = curve.first_last();
        assert!(first.is_finite() && last.is_finite(), "{name}: {curve:?}");
        if higher_is_better {
            assert!(last > first, "{name} PSNR did not rise: {first} → {last}");
        } else {
            assert!(last < first, "{name} loss did not fall: {first} → {last}");
        }
    }
    assert!(lines.iter().any(|l| l.contains("held-out")));
    let avatar = Avatar::from_bytes("quick", baked.writer.to_bytes().unwrap(), &Device::Cpu)
        .expect("baked avatar loads");
    assert_eq!(avatar.num_vertices(), r.vertices);
    assert!(avatar.renderer.is_some());
    let description = avatar.description.clone().unwrap_or_default();
    assert!(description.contains("not a capture of a real person"));
}

#[test]
fn bake_rejects_a_file_that_is_not_a_hand() {
    let err = bake(
        b"{\"asset\":{}}",
        "broken.glb",
        &BakeConfig::quick(),
        &mut |_| {},
    )
    .err()
    .expect("error");
    assert!(err.to_string().contains("broken.glb"), "{err}");
}

#[test]
fn the_embedded_default_avatar_is_the_baked_hand() {
    let avatar = xhand::default_avatar::load(&Device::Cpu).expect("embedded avatar loads");
    assert_eq!(avatar.name, "xhand default hand");
    assert!((40_000..=60_000).contains(&avatar.num_vertices()));
    assert!(avatar.renderer.is_some());
    let description = avatar.description.clone().unwrap_or_default();
    assert!(description.contains("not a capture of a real person"));
}
