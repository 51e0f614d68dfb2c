//! Workload controllers (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
//! Job, CronJob) and KubeVirt's VirtualMachine: the pod template (or instance template) is what
//! policies see, so it becomes an address-less workload of the controller's kind. Their live Pods
//! fold into them later ([`crate::fold::controllers`]).
//!
//! Only the fields netpol reads are decoded, like the VM kinds: a chart's output carries
//! resources, probes, volumes, securityContext, strategy and the rest of the template, which netpol
//! neither needs nor wants to reject; a read field of the wrong type is still an error with its
//! path and position.
//!
//! How many instances a controller runs (whether two of its replicas can talk): `spec.replicas`
//! (API default 1) of a Deployment, StatefulSet, ReplicaSet or ReplicationController, `parallelism`
//! (default 1) of a Job (`spec`) or a CronJob (`spec.jobTemplate.spec`); a DaemonSet runs one per
//! node, which a manifest does not count, so it is taken as several.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netpol_core::{Instances, Workload, WorkloadKind};
use serde::Deserialize;

use super::workload::named_ports;
use super::{Loader, Obj};
use crate::de::decode;
use crate::fold::Owner;
use crate::validate::{self, FPath, NameRule};
use crate::yaml::Node;
use crate::Severity;

impl Loader {
    /// A controller of `kind`: labels and named ports of its pod template, no address.
    pub(super) fn controller(&mut self, obj: &Obj<'_>, kind: WorkloadKind) -> Option<Workload> {
        let (r, issues) = decode::<ControllerWire>(obj.node, false);
        let c = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&c.metadata, true, NameRule::Subdomain, &mut problems);
        let instances = self.instances(obj, kind, &mut problems)?;
        let spec = c.spec.unwrap_or_default();
        let (template, base) = if kind == WorkloadKind::CronJob {
            let t = spec
                .job_template
                .and_then(|j| j.spec)
                .and_then(|s| s.template);
            let base = FPath::root().f("spec").f("jobTemplate").f("spec");
            (t, base.f("template"))
        } else {
            (spec.template, FPath::root().f("spec").f("template"))
        };
        let template = template.unwrap_or_default();
        let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
        validate::labels_problems(&labels, &base.f("metadata").f("labels"), &mut problems);
        let pod_spec = template.spec.unwrap_or_default();
        let host_network = pod_spec.host_network == Some(true);
        let named_ports = named_ports(&pod_spec.into_pod_spec(), &base.f("spec"), &mut problems);
        if !self.valid(obj, problems) {
            return None;
        }
        if host_network {
            let message = "skipped: its pods use their node's network (hostNetwork), which NetworkPolicy does not cover".to_string();
            let d = obj.diag(Severity::Note, obj.node.pos, message);
            self.push(d.field(format!("{}.spec.hostNetwork", base.render())));
            return None;
        }
        Some(Workload {
            kind,
            namespace: self.namespace_of(&c.metadata),
            name: c.metadata.name.clone().unwrap_or_default(),
            labels,
            addresses: Vec::new(),
            node: None,
            phase: None,
            named_ports,
            origin: Self::origin(obj),
            instances,
        })
    }

    /// How many instances of a controller of `kind` run at once (see the module documentation),
    /// read only from the field its kind has; `None` when that field does not decode. A negative
    /// count is the API server's error.
    fn instances(
        &mut self,
        obj: &Obj<'_>,
        kind: WorkloadKind,
        problems: &mut Vec<validate::Problem>,
    ) -> Option<Instances> {
        let spec = FPath::root().f("spec");
        let (count, path) = match kind {
            WorkloadKind::DaemonSet => return Some(Instances::PerNode),
            WorkloadKind::Job => {
                let w: CountWire<ParallelismWire> = self.decode_count(obj)?;
                (w.spec.and_then(|s| s.parallelism), spec.f("parallelism"))
            }
            WorkloadKind::CronJob => {
                let w: CountWire<CronJobCountWire> = self.decode_count(obj)?;
                let job = w.spec.and_then(|s| s.job_template).and_then(|j| j.spec);
                let path = spec.f("jobTemplate").f("spec").f("parallelism");
                (job.and_then(|s| s.parallelism), path)
            }
            _ => {
                let w: CountWire<ReplicasWire> = self.decode_count(obj)?;
                (w.spec.and_then(|s| s.replicas), spec.f("replicas"))
            }
        };
        let count = count.unwrap_or(1);
        Some(match u32::try_from(count) {
            Ok(n) => Instances::Count(n),
            Err(_) => {
                let detail = "must be greater than or equal to 0";
                problems.push(validate::invalid(
                    path,
                    validate::Val::N(count.into()),
                    detail,
                ));
                Instances::default()
            }
        })
    }

    /// Decodes the one count field of a controller's kind; the object's other fields, and its
    /// unknown or duplicate fields, are the main decoding's.
    fn decode_count<T: serde::de::DeserializeOwned>(&mut self, obj: &Obj<'_>) -> Option<T> {
        let (r, _issues) = decode::<T>(obj.node, false);
        self.decoded(obj, r, Vec::new())
    }

    /// A KubeVirt VirtualMachine: the labels of `spec.template` (which its instance and the
    /// instance's virt-launcher pod carry), no address (its instance has it and folds into it).
    pub(super) fn kubevirt_vm(&mut self, obj: &Obj<'_>) -> Option<Workload> {
        let (r, issues) = decode::<KubevirtVmWire>(obj.node, false);
        let vm = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&vm.metadata, true, NameRule::Subdomain, &mut problems);
        let labels = vm
            .spec
            .and_then(|s| s.template)
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default();
        let path = FPath::root().f("spec").f("template").f("metadata");
        validate::labels_problems(&labels, &path.f("labels"), &mut problems);
        if !self.valid(obj, problems) {
            return None;
        }
        Some(Workload {
            kind: WorkloadKind::VirtualMachine,
            namespace: self.namespace_of(&vm.metadata),
            name: vm.metadata.name.clone().unwrap_or_default(),
            labels,
            addresses: Vec::new(),
            node: None,
            phase: None,
            named_ports: Vec::new(),
            origin: Self::origin(obj),
            instances: Default::default(),
        })
    }
}

/// The controller named in `metadata.ownerReferences` (the one with `controller: true`), read
/// leniently: the kind's own decoding has already checked the field's types.
pub(super) fn owner_of(node: &Node) -> Option<Owner> {
    let refs = node.get("metadata")?.get("ownerReferences")?;
    let crate::yaml::Kind::Seq(items) = &refs.kind else {
        return None;
    };
    items.iter().find_map(|r| {
        let controller = matches!(
            r.get("controller").map(|n| &n.kind),
            Some(crate::yaml::Kind::Scalar(crate::yaml::Scalar::Bool(
                true,
                _
            )))
        );
        controller.then(|| Owner {
            kind: r.get_str("kind").unwrap_or_default().to_string(),
            name: r.get_str("name").unwrap_or_default().to_string(),
        })
    })
}

// ---- the fields netpol reads from controllers (everything else is ignored, not rejected) -----

#[derive(Deserialize, Default)]
struct ControllerWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<ControllerSpecWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ControllerSpecWire {
    #[serde(default)]
    template: Option<TemplateWire>,
    #[serde(default)]
    job_template: Option<JobTemplateWire>,
}

#[derive(Deserialize, Default)]
struct JobTemplateWire {
    #[serde(default)]
    spec: Option<JobSpecWire>,
}

#[derive(Deserialize, Default)]
struct JobSpecWire {
    #[serde(default)]
    template: Option<TemplateWire>,
}

#[derive(Deserialize, Default)]
struct TemplateWire {
    #[serde(default)]
    metadata: Option<TemplateMetaWire>,
    #[serde(default)]
    spec: Option<TemplatePodSpecWire>,
}

#[derive(Deserialize, Default)]
struct TemplateMetaWire {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TemplatePodSpecWire {
    #[serde(default)]
    host_network: Option<bool>,
    #[serde(default)]
    containers: Option<Vec<ContainerWire>>,
    #[serde(default)]
    init_containers: Option<Vec<ContainerWire>>,
}

impl TemplatePodSpecWire {
    /// The pod spec the Pod loader's named-port reading takes.
    fn into_pod_spec(self) -> PodSpec {
        let containers = |cs: Option<Vec<ContainerWire>>| {
            cs.into_iter()
                .flatten()
                .map(ContainerWire::into_container)
                .collect::<Vec<_>>()
        };
        PodSpec {
            containers: containers(self.containers),
            init_containers: Some(containers(self.init_containers)),
            ..PodSpec::default()
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ContainerWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ports: Option<Vec<ContainerPort>>,
    #[serde(default)]
    restart_policy: Option<String>,
}

impl ContainerWire {
    fn into_container(self) -> Container {
        Container {
            name: self.name.unwrap_or_default(),
            ports: self.ports,
            restart_policy: self.restart_policy,
            ..Container::default()
        }
    }
}

/// The `spec` of a controller, for the field that counts its instances.
#[derive(Deserialize, Default)]
struct CountWire<S> {
    #[serde(default = "none")]
    spec: Option<S>,
}

fn none<S>() -> Option<S> {
    None
}

/// Deployment, StatefulSet, ReplicaSet, ReplicationController: `spec.replicas`.
#[derive(Deserialize, Default)]
struct ReplicasWire {
    #[serde(default)]
    replicas: Option<i32>,
}

/// Job (and a CronJob's job template): `parallelism`.
#[derive(Deserialize, Default)]
struct ParallelismWire {
    #[serde(default)]
    parallelism: Option<i32>,
}

/// CronJob: `spec.jobTemplate.spec.parallelism`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CronJobCountWire {
    #[serde(default)]
    job_template: Option<CountWire<ParallelismWire>>,
}

#[derive(Deserialize, Default)]
struct KubevirtVmWire {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: Option<KubevirtVmSpecWire>,
}

#[derive(Deserialize, Default)]
struct KubevirtVmSpecWire {
    #[serde(default)]
    template: Option<KubevirtTemplateWire>,
}

#[derive(Deserialize, Default)]
struct KubevirtTemplateWire {
    #[serde(default)]
    metadata: Option<TemplateMetaWire>,
}
