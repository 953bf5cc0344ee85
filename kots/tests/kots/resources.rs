//! The typed KOTS custom resources read real-looking documents, ignore fields they do not know
//! (KOTS adds fields), and default what is absent.

use windlass_kots::resources::{
    Application, Config, ConfigValues, HelmChartV1Beta1, HelmChartV1Beta2, Installation,
    LicenseResource, from_value,
};

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

#[test]
fn resources_read_their_fields_and_ignore_unknown_ones() {
    let application: Application = from_value(&yaml(
        "apiVersion: kots.io/v1beta1\nkind: Application\nmetadata:\n  name: my-app\nspec:\n  title: My App\n  proxyPublicImages: true\n  additionalImages: [busybox:1]\n  someFutureField: 1\n",
    ))
    .unwrap();
    assert_eq!(application.metadata.name.as_deref(), Some("my-app"));
    assert_eq!(application.spec.proxy_public_images, Some(true));
    assert_eq!(application.spec.additional_images, ["busybox:1"]);

    let installation: Installation = from_value(&yaml(
        "apiVersion: kots.io/v1beta1\nkind: Installation\nspec:\n  knownImages:\n    - image: quay.io/a/b:1\n      isPrivate: true\n  channelID: c1\n",
    ))
    .unwrap();
    assert_eq!(installation.spec.known_images[0].image, "quay.io/a/b:1");
    assert!(installation.spec.known_images[0].is_private);
    assert_eq!(installation.spec.channel_id.as_deref(), Some("c1"));

    let old: HelmChartV1Beta1 = from_value(&yaml(
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nspec:\n  chart:\n    name: web\n    chartVersion: 1.0.0\n    releaseName: web-r\n  useHelmInstall: true\n  values:\n    a: 1\n",
    ))
    .unwrap();
    assert_eq!(old.spec.chart.release_name.as_deref(), Some("web-r"));
    assert_eq!(old.spec.use_helm_install, Some(true));
    let new: HelmChartV1Beta2 = from_value(&yaml(
        "apiVersion: kots.io/v1beta2\nkind: HelmChart\nspec:\n  chart:\n    name: web\n  releaseName: web-r\n  weight: 3\n  optionalValues: []\n",
    ))
    .unwrap();
    assert_eq!(new.spec.release_name.as_deref(), Some("web-r"));
    assert_eq!(new.spec.weight, Some(3));

    let config: Config = from_value(&yaml(
        "apiVersion: kots.io/v1beta1\nkind: Config\nspec:\n  groups:\n    - name: db\n      items:\n        - name: host\n          type: text\n          default: localhost\n",
    ))
    .unwrap();
    assert_eq!(
        config.spec.groups[0].items[0].item_type.as_deref(),
        Some("text")
    );
    let values: ConfigValues = from_value(&yaml(
        "apiVersion: kots.io/v1beta1\nkind: ConfigValues\nspec:\n  values:\n    host:\n      value: db.example\n",
    ))
    .unwrap();
    assert_eq!(
        values.spec.values["host"].value.as_deref(),
        Some("db.example")
    );

    let license: LicenseResource = from_value(&yaml(
        "apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  licenseID: not-kept\n  appSlug: my-app\n  licenseSequence: 4\n",
    ))
    .unwrap();
    assert_eq!(license.spec.app_slug.as_deref(), Some("my-app"));
    assert!(
        !format!("{license:?}").contains("not-kept"),
        "the ID is never kept"
    );

    let empty: Application = from_value(&yaml("kind: Application\n")).unwrap();
    assert_eq!(empty, Application::default());
}
