//! The CPU reference renderer on the generated test avatar.

mod common;

use common::{flat3, test_avatar};
use xhand::camera::{Camera, ViewDirection};
use xhand::cpu_render::render;
use xhand::hand::{Handedness, mirror_pose};
use xhand::mesh::bounding_box;
use xhand::pose::PoseFrame;
use xhand::render_settings::{RenderSettings, ShadingMode};

fn bent_pose() -> PoseFrame {
    let mut f = PoseFrame::default();
    f.pose[3 * 4 + 2] = 0.9; // middle1 flexes
    f.pose[3 * 13] = 0.4;
    f
}

fn settings(mode: ShadingMode) -> RenderSettings {
    RenderSettings {
        mode,
        background: [0.1, 0.2, 0.3],
        ..RenderSettings::default()
    }
}

#[test]
fn mask_matches_the_projected_mesh() {
    let avatar = test_avatar();
    let posed = avatar.evaluate(&bent_pose(), 0).unwrap();
    let (lo, hi) = bounding_box(&posed.geometry.vertices);
    let cam = Camera::framing(lo, hi, ViewDirection::Front, 160, 240);
    let out = render(&avatar, &posed, &cam, &settings(ShadingMode::Mask)).unwrap();
    let covered = out.mask.iter().filter(|&&m| m).count();
    assert!(
        covered > 160 * 240 / 20,
        "hand covers only {covered} pixels"
    );
    // The mask's bounding box equals the projected vertices' box (within a pixel).
    let proj: Vec<[f64; 3]> = posed
        .geometry
        .vertices
        .iter()
        .map(|&v| cam.project(v).unwrap())
        .collect();
    let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &proj {
        u0 = u0.min(p[0]);
        u1 = u1.max(p[0]);
        v0 = v0.min(p[1]);
        v1 = v1.max(p[1]);
    }
    let (mut c0, mut c1, mut r0, mut r1) = (usize::MAX, 0, usize::MAX, 0);
    for (i, &m) in out.mask.iter().enumerate() {
        if m {
            let (c, r) = (i % 160, i / 160);
            c0 = c0.min(c);
            c1 = c1.max(c);
            r0 = r0.min(r);
            r1 = r1.max(r);
        }
    }
    assert!(
        (c0 as f64 - u0).abs() < 1.5 && (c1 as f64 + 1.0 - u1).abs() < 1.5,
        "cols {c0}..{c1} vs {u0}..{u1}"
    );
    assert!(
        (r0 as f64 - v0).abs() < 1.5 && (r1 as f64 + 1.0 - v1).abs() < 1.5,
        "rows {r0}..{r1} vs {v0}..{v1}"
    );
    // Background pixels carry the background colour.
    let bg = out.mask.iter().position(|&m| !m).unwrap();
    assert_eq!(out.image.pixels[bg], [26, 51, 77, 255]);
}

#[test]
fn identical_input_gives_identical_output() {
    let avatar = test_avatar();
    let posed = avatar.evaluate(&bent_pose(), 0).unwrap();
    let (lo, hi) = bounding_box(&posed.geometry.vertices);
    let cam = Camera::framing(lo, hi, ViewDirection::Back, 120, 180);
    let a = render(&avatar, &posed, &cam, &settings(ShadingMode::Neural)).unwrap();
    let posed2 = avatar.evaluate(&bent_pose(), 0).unwrap();
    let b = render(&avatar, &posed2, &cam, &settings(ShadingMode::Neural)).unwrap();
    assert_eq!(a.image, b.image);
}

#[test]
fn modes_differ_as_they_should() {
    let avatar = test_avatar();
    let posed = avatar.evaluate(&bent_pose(), 0).unwrap();
    let (lo, hi) = bounding_box(&posed.geometry.vertices);
    let cam = Camera::framing(lo, hi, ViewDirection::Front, 120, 180);
    let img = |m| render(&avatar, &posed, &cam, &settings(m)).unwrap();
    let mask = img(ShadingMode::Mask);
    let albedo = img(ShadingMode::Albedo);
    let sh = img(ShadingMode::Sh);
    let normals = img(ShadingMode::Normals);
    let neural = img(ShadingMode::Neural);
    // Same coverage in every mode.
    for o in [&albedo, &sh, &normals, &neural] {
        assert_eq!(o.mask, mask.mask);
    }
    let hand: Vec<usize> = (0..mask.mask.len()).filter(|&i| mask.mask[i]).collect();
    assert!(
        hand.iter()
            .all(|&i| mask.image.pixels[i] == [255, 255, 255, 255])
    );
    let differs = |a: &xhand::image_io::Rgba8, b: &xhand::image_io::Rgba8| {
        hand.iter().filter(|&&i| a.pixels[i] != b.pixels[i]).count() as f64 / hand.len() as f64
    };
    assert!(
        differs(&albedo.image, &sh.image) > 0.5,
        "SH lighting must change most pixels"
    );
    assert!(differs(&albedo.image, &neural.image) > 0.5);
    assert!(differs(&sh.image, &normals.image) > 0.5);
    // Viewed from the palm side (−y), normals point towards the camera: green channel low.
    let mean_g: f64 = hand
        .iter()
        .map(|&i| normals.image.pixels[i][1] as f64)
        .sum::<f64>()
        / hand.len() as f64;
    assert!(
        mean_g < 110.0,
        "palm normals should face −y, mean green {mean_g}"
    );
}

#[test]
fn sh_lighting_follows_the_light() {
    let avatar = test_avatar();
    let mut frame = bent_pose();
    let mut light_at = |dir: [f32; 3]| {
        frame.sh = Some(xhand::shading::directional_sh(dir, 0.5, 0.6));
        let posed = avatar.evaluate(&frame, 0).unwrap();
        let (lo, hi) = bounding_box(&posed.geometry.vertices);
        let cam = Camera::framing(lo, hi, ViewDirection::Front, 80, 120);
        let o = render(&avatar, &posed, &cam, &settings(ShadingMode::Sh)).unwrap();
        let hand: Vec<usize> = (0..o.mask.len()).filter(|&i| o.mask[i]).collect();
        hand.iter()
            .map(|&i| o.image.pixels[i][0] as f64)
            .sum::<f64>()
            / hand.len() as f64
    };
    let towards_palm = light_at([0.0, -1.0, 0.0]);
    let behind = light_at([0.0, 1.0, 0.0]);
    assert!(
        towards_palm > behind + 20.0,
        "lit {towards_palm} vs behind {behind}"
    );
}

#[test]
fn left_hand_is_the_mirror_of_the_right() {
    let avatar = test_avatar();
    let mut right = bent_pose();
    right.pose[3 + 1] = 0.3; // joint 1, y: some spread, so the mirror is not trivial
    let mut left = right.clone();
    left.pose = mirror_pose(&right.pose);
    left.hand = Some(Handedness::Left);
    let r = avatar.evaluate(&right, 0).unwrap();
    let l = avatar.evaluate(&left, 0).unwrap();
    assert!(l.geometry.drive.mirrored && !r.geometry.drive.mirrored);
    let mirrored: Vec<[f32; 3]> = r
        .geometry
        .vertices
        .iter()
        .map(|v| [-v[0], v[1], v[2]])
        .collect();
    common::assert_close(
        "left = mirrored right",
        &flat3(&l.geometry.vertices),
        &flat3(&mirrored),
        1e-6,
    );
    // Outward normals mirror too (after XHand's sign flip for the unchanged winding).
    let ln: Vec<[f32; 3]> = l.geometry.normals.iter().map(|n| n.map(|c| -c)).collect();
    let rn: Vec<[f32; 3]> = r
        .geometry
        .normals
        .iter()
        .map(|n| [-n[0], n[1], n[2]])
        .collect();
    common::assert_close("left normals", &flat3(&ln), &flat3(&rn), 1e-5);
    // The networks see the same (right-hand) pose, so the details are identical.
    assert_eq!(l.embeddings.delta, r.embeddings.delta);
}

/// Two hands in one image: every pixel shows the nearer surface (each hand's own visibility
/// depth), whichever hand is drawn first; moving one hand in front makes it cover the other.
#[test]
fn the_nearer_of_two_hands_covers_the_other() {
    use nalgebra::Vector3;
    use xhand::cpu_render::render_hands;
    let avatar = test_avatar();
    let right = bent_pose();
    let posed_r = avatar.evaluate(&right, 0).unwrap();
    let centre = |v: &[[f32; 3]]| {
        let (lo, hi) = bounding_box(v);
        Vector3::from_fn(|k, _| 0.5 * (lo[k] + hi[k]) as f64)
    };
    let c = centre(&posed_r.geometry.vertices);
    let cam = Camera::look_at(
        c + Vector3::new(0.0, 0.0, 0.6),
        c,
        Vector3::y(),
        0.6,
        120,
        120,
    );
    // The left hand over the right one, `dz` metres nearer the camera (+z).
    let left_at = |dz: f64| {
        let mut left = PoseFrame {
            hand: Some(Handedness::Left),
            pose: mirror_pose(&right.pose),
            ..bent_pose()
        };
        let off = c - centre(&avatar.evaluate(&left, 0).unwrap().geometry.vertices);
        left.trans = [off.x as f32, off.y as f32, (off.z + dz) as f32];
        avatar.evaluate(&left, 0).unwrap()
    };
    let s = settings(ShadingMode::Normals);
    let alone_r = render(&avatar, &posed_r, &cam, &s).unwrap();
    for dz in [0.05, -0.05] {
        let posed_l = left_at(dz);
        let alone_l = render(&avatar, &posed_l, &cam, &s).unwrap();
        let (l, r) = (&alone_l, &alone_r);
        for order in [[&posed_r, &posed_l], [&posed_l, &posed_r]] {
            let hands = [(&avatar, order[0]), (&avatar, order[1])];
            let both = render_hands(&hands, &cam, &s).unwrap();
            let (mut overlap, mut left_wins) = (0, 0);
            for i in 0..both.mask.len() {
                assert_eq!(both.mask[i], l.mask[i] || r.mask[i], "pixel {i}: the union");
                let shows_left =
                    l.mask[i] && (!r.mask[i] || l.visibility.depth[i] < r.visibility.depth[i]);
                let want = if shows_left { l } else { r };
                assert_eq!(
                    both.image.pixels[i], want.image.pixels[i],
                    "dz {dz}, pixel {i}"
                );
                assert_eq!(both.visibility.depth[i], want.visibility.depth[i]);
                if both.mask[i] {
                    // Scene ids: the second hand's follow the first's faces.
                    let second = if std::ptr::eq(order[1], &posed_l) {
                        l
                    } else {
                        r
                    };
                    let shown_second = std::ptr::eq(want, second);
                    let offset = if shown_second {
                        avatar.template.faces.len() as u32
                    } else {
                        0
                    };
                    assert_eq!(
                        both.visibility.triangle[i],
                        want.visibility.triangle[i] + offset
                    );
                }
                if l.mask[i] && r.mask[i] {
                    overlap += 1;
                    left_wins += shows_left as usize;
                }
            }
            assert!(overlap > 100, "the hands overlap in {overlap} pixels");
            // 5 cm in front, the left hand covers most of the overlap; behind, little of it.
            if dz > 0.0 {
                assert!(left_wins * 4 > overlap * 3, "{left_wins} of {overlap}");
            } else {
                assert!(left_wins * 4 < overlap, "{left_wins} of {overlap}");
            }
        }
    }
}
