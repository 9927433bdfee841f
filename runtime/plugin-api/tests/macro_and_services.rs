//! The descriptor macro exports what the C ABI expects, and services answer `NotEnabled`
//! without the runtime (this test binary does not load libdmtcp.so).

use dmtcp_plugin::{Error, Event, EventData, RawEventData, VidTable, dmtcp_plugin, kvdb, section};
use std::ffi::CStr;
use std::sync::Mutex;

static SEEN: Mutex<Vec<(Event, u32, i32)>> = Mutex::new(Vec::new());

fn hook(event: Event, data: &EventData) {
    SEEN.lock()
        .unwrap()
        .push((event, data.generation(), data.tid()));
    if event == Event::Exit {
        panic!("a panicking hook must not unwind into the runtime");
    }
}

dmtcp_plugin! { name: "test-plugin", description: "records events", hook: hook }

unsafe extern "C" {
    fn dmtcp_plugin_descriptor() -> *const dmtcp_plugin::Descriptor;
}

#[test]
fn descriptor_names_the_plugin_and_forwards_events() {
    // SAFETY: defined by the macro above.
    let d = unsafe { &*dmtcp_plugin_descriptor() };
    assert_eq!(d.api_version, 1);
    // SAFETY: static NUL-terminated strings from the macro.
    let (name, desc) = unsafe { (CStr::from_ptr(d.name), CStr::from_ptr(d.description)) };
    assert_eq!(name.to_str().unwrap(), "test-plugin");
    assert_eq!(desc.to_str().unwrap(), "records events");
    let hook = d.event_hook.expect("hook");
    let raw = RawEventData {
        size: size_of::<RawEventData>() as u32,
        generation: 7,
        pid: 0,
        tid: 42,
        path: std::ptr::null(),
    };
    // SAFETY: calling the hook as the runtime does.
    unsafe {
        hook(Event::PreCheckpoint as u32, &raw);
        hook(999, &raw); // an event from a newer runtime: ignored
        hook(Event::Exit as u32, &raw); // panics inside; must return normally
        hook(Event::Restart as u32, std::ptr::null());
    }
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (Event::PreCheckpoint, 7, 42),
            (Event::Exit, 7, 42),
            (Event::Restart, 0, 0)
        ]
    );
}

#[test]
fn old_runtime_data_hides_fields_it_lacks() {
    let raw = RawEventData {
        size: 8,
        generation: 3,
        pid: 9,
        tid: 9,
        path: c"x".as_ptr(),
    };
    let d = EventData::new(raw);
    assert_eq!(d.generation(), 3);
    assert_eq!(d.tid(), 0);
    assert!(d.path().is_none());
}

#[test]
fn events_round_trip_and_post_events_are_the_resuming_ones() {
    for e in Event::ALL {
        assert_eq!(Event::from_raw(e as u32), Some(e));
    }
    assert_eq!(Event::from_raw(0), None);
    let post: Vec<&str> = Event::ALL
        .iter()
        .filter(|e| e.is_post())
        .map(|e| e.c_name())
        .collect();
    assert_eq!(
        post,
        [
            "EXIT",
            "ATFORK_PARENT",
            "ATFORK_CHILD",
            "POST_EXEC",
            "THREAD_EXIT",
            "RESUME",
            "RESTART",
            "THREAD_RESUME"
        ]
    );
}

#[test]
fn services_without_the_runtime_say_so() {
    assert!(!dmtcp_plugin::runtime_present());
    assert_eq!(kvdb::set("db", b"k", b"v"), Err(Error::NotEnabled));
    assert_eq!(kvdb::incr("db", b"k", 1), Err(Error::NotEnabled));
    assert_eq!(section::load("x"), Err(Error::NotEnabled));
    assert_eq!(dmtcp_plugin::barrier("b"), Err(Error::NotEnabled));
    assert_eq!(
        VidTable::new("t").unwrap().register(5),
        Err(Error::NotEnabled)
    );
    assert_eq!(VidTable::new("a\0b").unwrap_err(), Error::Invalid);
}
