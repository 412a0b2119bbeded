"""The terms of the published SPDX 3.0.1 `@context` that the export uses, for JSON-LD
processors in tests (rdflib) that must not fetch https://spdx.org/rdf/3.0.1/spdx-context.jsonld."""

from typing import Any

TERMS = "https://spdx.org/rdf/3.0.1/terms/"


def _vocab(iri: str, vocabulary: str) -> dict[str, Any]:
    return {"@id": iri, "@type": "@vocab", "@context": {"@vocab": f"{TERMS}{vocabulary}/"}}


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri, "@type": "@id"}


def _typed(iri: str, datatype: str) -> dict[str, str]:
    return {"@id": iri, "@type": datatype}


CONTEXT: dict[str, Any] = {
    "@version": 1.1,
    "core": f"{TERMS}Core/",
    "software": f"{TERMS}Software/",
    "ai": f"{TERMS}AI/",
    "dataset": f"{TERMS}Dataset/",
    "simplelicensing": f"{TERMS}SimpleLicensing/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "spdxId": "@id",
    "type": "@type",
    # classes
    "CreationInfo": "core:CreationInfo",
    "SpdxDocument": "core:SpdxDocument",
    "Organization": "core:Organization",
    "Tool": "core:Tool",
    "Relationship": "core:Relationship",
    "Hash": "core:Hash",
    "DictionaryEntry": "core:DictionaryEntry",
    "ai_AIPackage": "ai:AIPackage",
    "ai_EnergyConsumption": "ai:EnergyConsumption",
    "ai_EnergyConsumptionDescription": "ai:EnergyConsumptionDescription",
    "dataset_DatasetPackage": "dataset:DatasetPackage",
    "simplelicensing_LicenseExpression": "simplelicensing:LicenseExpression",
    # Core properties
    "creationInfo": _ref("core:creationInfo"),
    "specVersion": _typed("core:specVersion", "xsd:string"),
    "created": _typed("core:created", "xsd:dateTimeStamp"),
    "createdBy": _ref("core:createdBy"),
    "createdUsing": _ref("core:createdUsing"),
    "name": _typed("core:name", "xsd:string"),
    "summary": _typed("core:summary", "xsd:string"),
    "description": _typed("core:description", "xsd:string"),
    "comment": _typed("core:comment", "xsd:string"),
    "profileConformance": _vocab("core:profileConformance", "Core/ProfileIdentifierType"),
    "rootElement": _ref("core:rootElement"),
    "element": _ref("core:element"),
    "dataLicense": _ref("core:dataLicense"),
    "from": _ref("core:from"),
    "to": _ref("core:to"),
    "relationshipType": _vocab("core:relationshipType", "Core/RelationshipType"),
    "verifiedUsing": {"@id": "core:verifiedUsing"},
    "algorithm": _vocab("core:algorithm", "Core/HashAlgorithm"),
    "hashValue": _typed("core:hashValue", "xsd:string"),
    "key": _typed("core:key", "xsd:string"),
    "value": _typed("core:value", "xsd:string"),
    "suppliedBy": _ref("core:suppliedBy"),
    "releaseTime": _typed("core:releaseTime", "xsd:dateTimeStamp"),
    # Software
    "software_packageVersion": _typed("software:packageVersion", "xsd:string"),
    "software_downloadLocation": _typed("software:downloadLocation", "xsd:anyURI"),
    "software_packageUrl": _typed("software:packageUrl", "xsd:anyURI"),
    "software_primaryPurpose": _vocab("software:primaryPurpose", "Software/SoftwarePurpose"),
    # AI
    "ai_hyperparameter": {"@id": "ai:hyperparameter"},
    "ai_metric": {"@id": "ai:metric"},
    "ai_limitation": _typed("ai:limitation", "xsd:string"),
    "ai_domain": _typed("ai:domain", "xsd:string"),
    "ai_typeOfModel": _typed("ai:typeOfModel", "xsd:string"),
    "ai_informationAboutApplication": _typed("ai:informationAboutApplication", "xsd:string"),
    "ai_informationAboutTraining": _typed("ai:informationAboutTraining", "xsd:string"),
    "ai_safetyRiskAssessment": _vocab("ai:safetyRiskAssessment", "AI/SafetyRiskAssessmentType"),
    "ai_useSensitivePersonalInformation": _vocab(
        "ai:useSensitivePersonalInformation", "Core/PresenceType"
    ),
    "ai_energyConsumption": {"@id": "ai:energyConsumption"},
    "ai_trainingEnergyConsumption": {"@id": "ai:trainingEnergyConsumption"},
    "ai_energyQuantity": _typed("ai:energyQuantity", "xsd:decimal"),
    "ai_energyUnit": _vocab("ai:energyUnit", "AI/EnergyUnitType"),
    # Dataset
    "dataset_datasetType": _vocab("dataset:datasetType", "Dataset/DatasetType"),
    "dataset_datasetSize": _typed("dataset:datasetSize", "xsd:nonNegativeInteger"),
    "dataset_intendedUse": _typed("dataset:intendedUse", "xsd:string"),
    "dataset_knownBias": _typed("dataset:knownBias", "xsd:string"),
    "dataset_hasSensitivePersonalInformation": _vocab(
        "dataset:hasSensitivePersonalInformation", "Core/PresenceType"
    ),
    # SimpleLicensing
    "simplelicensing_licenseExpression": _typed("simplelicensing:licenseExpression", "xsd:string"),
    "simplelicensing_customIdToUri": {"@id": "simplelicensing:customIdToUri"},
}
