//! Feeds arbitrary bytes to every read path of the image reader: it must return errors, never
//! panic, hang or allocate without bound.
#![no_main]

use dmtcp_image::{Image, RegionId, Storage, read_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_header(&data);
    let Ok(image) = Image::open(data) else { return };
    let _ = image.verify_all();
    for i in 0..image.frames().len() {
        let _ = image.frame_pieces(i);
    }
    for (i, r) in image.regions().iter().enumerate() {
        if r.meta.len <= 1 << 24 && matches!(r.storage, Storage::Pages(_)) {
            let mut buf = vec![0u8; r.meta.len as usize];
            let _ = image.read_region_into(RegionId(i as u32), &mut buf);
        }
    }
    let _ = dmtcp_image::inspect::Summary::of(&image).to_json();
});
